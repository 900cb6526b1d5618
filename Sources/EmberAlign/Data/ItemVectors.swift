/// Base (fused, frozen) embeddings by item: one row of `dim` floats per item, each row
/// L2-normalized. Training and evaluation address items by row.
public struct ItemVectors: Sendable {
    public let dim: Int
    public private(set) var values: [Float] = []
    public private(set) var itemIDs: [String] = []
    public private(set) var rowOf: [String: Int] = [:]
    /// The model the vectors came from (`omni-small@<hash>`).
    public let modelID: String

    public init(dim: Int, modelID: String) {
        self.dim = dim
        self.modelID = modelID
    }

    public var count: Int { itemIDs.count }

    /// Adds or replaces an item's vector (normalized here).
    public mutating func set(_ itemID: String, _ vector: [Float]) {
        precondition(vector.count == dim, "vector of \(vector.count) values for \(dim) dims")
        let normalized = Self.normalized(vector)
        if let row = rowOf[itemID] {
            values.replaceSubrange((row * dim)..<((row + 1) * dim), with: normalized)
        } else {
            rowOf[itemID] = itemIDs.count
            itemIDs.append(itemID)
            values += normalized
        }
    }

    public func row(_ index: Int) -> ArraySlice<Float> { values[(index * dim)..<((index + 1) * dim)] }

    /// The rows' values one after the other (rows.count × dim).
    public func gather(_ rows: [Int]) -> [Float] {
        var out = [Float](repeating: 0, count: rows.count * dim)
        for (i, r) in rows.enumerated() { out.replaceSubrange((i * dim)..<((i + 1) * dim), with: row(r)) }
        return out
    }

    /// The normalized mean of some rows (a user's recent history as one query vector).
    public func normalizedMean(_ rows: [Int]) -> [Float] {
        var sum = [Float](repeating: 0, count: dim)
        for r in rows {
            let base = r * dim
            for j in 0..<dim { sum[j] += values[base + j] }
        }
        return Self.normalized(sum)
    }

    static func normalized(_ v: [Float]) -> [Float] {
        var s: Double = 0
        for x in v { s += Double(x) * Double(x) }
        guard s > 0 else { return v }
        let inv = Float(1 / s.squareRoot())
        return v.map { $0 * inv }
    }
}
