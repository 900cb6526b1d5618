/// The four kinds of training signal `ember align` distils into the head.
public enum AlignSource: String, Sendable, CaseIterable, Comparable {
    /// Item → the items nearest to it in the recommender's ID-embedding space.
    case id2item
    /// The mean of a user's previous k watched items → the next one.
    case seq2item
    /// Co-engaged item pairs, both directions.
    case i2i
    /// Search query (embedded by the model's text tower) → the item watched.
    case q2i

    public static func < (a: AlignSource, b: AlignSource) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// One source's (anchor, positive item) pairs of one split. Every anchor lives in the base
/// embedding space, so anchor and positive go through the same head: an anchor is the
/// normalized mean of some item rows (one item for id2item and i2i, the history for
/// seq2item) or a query vector (q2i).
public struct PairSet: Sendable {
    public let source: AlignSource
    /// Item rows whose normalized mean is the anchor; empty for a query anchor.
    public private(set) var anchorItems: [[Int32]] = []
    /// Row of `queryVectors` for a query anchor; -1 for an item anchor.
    public private(set) var anchorQuery: [Int32] = []
    public private(set) var positives: [Int32] = []
    /// Query vectors (count × dim), normalized.
    public private(set) var queryVectors: [Float] = []
    public let dim: Int

    public init(source: AlignSource, dim: Int) {
        self.source = source
        self.dim = dim
    }

    public var count: Int { positives.count }

    public mutating func add(anchorItems items: [Int], positive: Int) {
        anchorItems.append(items.map(Int32.init))
        anchorQuery.append(-1)
        positives.append(Int32(positive))
    }

    /// Adds a query vector; returns its row for `add(query:positive:)`.
    public mutating func addQueryVector(_ vector: [Float]) -> Int {
        precondition(vector.count == dim)
        queryVectors += ItemVectors.normalized(vector)
        return queryVectors.count / dim - 1
    }

    public mutating func add(query: Int, positive: Int) {
        anchorItems.append([])
        anchorQuery.append(Int32(query))
        positives.append(Int32(positive))
    }

    /// The single item an anchor is, or nil (history means and queries are no item).
    public func anchorItem(_ pair: Int) -> Int? {
        anchorItems[pair].count == 1 ? Int(anchorItems[pair][0]) : nil
    }

    /// Anchor vectors of some pairs (pairs.count × dim).
    public func anchors(_ pairs: [Int], items: ItemVectors) -> [Float] {
        var out = [Float](repeating: 0, count: pairs.count * dim)
        for (i, p) in pairs.enumerated() {
            let vector: [Float]
            if anchorQuery[p] >= 0 {
                let q = Int(anchorQuery[p])
                vector = Array(queryVectors[(q * dim)..<((q + 1) * dim)])
            } else if anchorItems[p].count == 1 {
                vector = Array(items.row(Int(anchorItems[p][0])))
            } else {
                vector = items.normalizedMean(anchorItems[p].map(Int.init))
            }
            out.replaceSubrange((i * dim)..<((i + 1) * dim), with: vector)
        }
        return out
    }

    /// Positive item vectors of some pairs (pairs.count × dim).
    public func positiveVectors(_ pairs: [Int], items: ItemVectors) -> [Float] {
        items.gather(pairs.map { Int(positives[$0]) })
    }
}
