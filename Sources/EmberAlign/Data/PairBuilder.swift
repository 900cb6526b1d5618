import EmberModel

/// Builds each source's train and validation pairs from the exported signals and the
/// items' base vectors. Items without a base vector are left out (counted); pairs that
/// touch a cold item are refused, so cold items stay unseen.
public struct PairBuilder: Sendable {
    /// ID-space neighbours per item for id2item.
    public var idNeighbours = 5
    /// Items of history averaged for seq2item.
    public var historyLength = 10

    public init() {}

    public struct Result: Sendable {
        public var train: [AlignSource: PairSet] = [:]
        public var validation: [AlignSource: PairSet] = [:]
        /// Signals left out because an item had no base vector.
        public var missingItems = 0
        /// Signals refused because they name a cold item.
        public var coldRefused = 0
    }

    /// `embedQueries` turns query texts into base-space vectors (the model's text tower);
    /// it is called once, with the distinct queries in file order, only when q2i is wanted.
    public func build(
        _ data: AlignData, items: ItemVectors, sources: [AlignSource],
        embedQueries: ([String]) throws -> [[Float]] = { _ in [] }
    ) throws -> Result {
        var result = Result()
        let split = data.splitOf
        func row(_ id: String) -> Int? {
            if split[id] == .cold {
                result.coldRefused += 1
                return nil
            }
            guard let r = items.rowOf[id] else {
                result.missingItems += 1
                return nil
            }
            return r
        }
        func sets(_ source: AlignSource) -> (PairSet, PairSet) { (PairSet(source: source, dim: items.dim), PairSet(source: source, dim: items.dim)) }
        for source in sources.sorted() {
            var (train, validation) = sets(source)
            switch source {
            case .seq2item:
                for sequence in data.sequences where sequence.split != .cold {
                    let rows = sequence.items.map { row($0) }
                    for t in 1..<max(1, rows.count) {
                        guard let target = rows[t] else { continue }
                        let history = rows[max(0, t - historyLength)..<t].compactMap { $0 }
                        guard !history.isEmpty else { continue }
                        if sequence.split == .validation { validation.add(anchorItems: history, positive: target) } else { train.add(anchorItems: history, positive: target) }
                    }
                }
            case .i2i:
                for pair in data.coEngagements where pair.split != .cold {
                    guard let a = row(pair.a), let b = row(pair.b), a != b else { continue }
                    if pair.split == .validation {
                        validation.add(anchorItems: [a], positive: b)
                        validation.add(anchorItems: [b], positive: a)
                    } else {
                        train.add(anchorItems: [a], positive: b)
                        train.add(anchorItems: [b], positive: a)
                    }
                }
            case .q2i:
                let wanted = data.queries.filter { $0.split != .cold }
                var order: [String] = []
                var seen: Set<String> = []
                for q in wanted where seen.insert(q.query).inserted { order.append(q.query) }
                let vectors = order.isEmpty ? [] : try embedQueries(order)
                guard vectors.count == order.count else { throw AlignDataError("q2i: \(vectors.count) query vectors for \(order.count) queries") }
                var trainRow: [String: Int] = [:], validationRow: [String: Int] = [:]
                for q in wanted {
                    guard let item = row(q.itemID) else { continue }
                    let v = vectors[order.firstIndex(of: q.query)!]
                    if q.split == .validation {
                        let r = validationRow[q.query] ?? validation.addQueryVector(v)
                        validationRow[q.query] = r
                        validation.add(query: r, positive: item)
                    } else {
                        let r = trainRow[q.query] ?? train.addQueryVector(v)
                        trainRow[q.query] = r
                        train.add(query: r, positive: item)
                    }
                }
            case .id2item:
                try idPairs(data, items: items, split: split, train: &train, validation: &validation, result: &result)
            }
            result.train[source] = train
            result.validation[source] = validation
        }
        return result
    }

    /// id2item: each train (validation) item's `idNeighbours` nearest train items by cosine
    /// in the recommender's ID space are its positives.
    private func idPairs(
        _ data: AlignData, items: ItemVectors, split: [String: AlignSplit],
        train: inout PairSet, validation: inout PairSet, result: inout Result
    ) throws {
        var ids: [(row: Int, split: AlignSplit, vector: [Float])] = []
        var width = 0
        for entry in data.idVectors {
            guard let s = split[entry.itemID] else { continue }
            if s == .cold {
                result.coldRefused += 1
                continue
            }
            guard let r = items.rowOf[entry.itemID] else {
                result.missingItems += 1
                continue
            }
            if width == 0 { width = entry.vector.count }
            guard entry.vector.count == width, width > 0 else { throw AlignDataError("id_vectors: item \(entry.itemID) has \(entry.vector.count) values, others \(width)") }
            ids.append((r, s, ItemVectors.normalized(entry.vector)))
        }
        let trainIDs = ids.indices.filter { ids[$0].split == .train }
        guard !trainIDs.isEmpty else { return }
        let all = ids.flatMap(\.vector)
        let candidates = trainIDs.flatMap { ids[$0].vector }
        var scores = [Float](repeating: 0, count: ids.count * trainIDs.count)
        all.withUnsafeBufferPointer { a in
            candidates.withUnsafeBufferPointer { b in
                scores.withUnsafeMutableBufferPointer { c in
                    gemm(.none, .transposed, m: ids.count, n: trainIDs.count, k: width, a: a.baseAddress!, b: b.baseAddress!, c: c.baseAddress!)
                }
            }
        }
        for (i, entry) in ids.enumerated() {
            let row = scores[(i * trainIDs.count)..<((i + 1) * trainIDs.count)]
            let best = topIndices(row, k: idNeighbours + 1).filter { ids[trainIDs[$0]].row != entry.row }.prefix(idNeighbours)
            for j in best {
                if entry.split == .validation { validation.add(anchorItems: [entry.row], positive: ids[trainIDs[j]].row) } else { train.add(anchorItems: [entry.row], positive: ids[trainIDs[j]].row) }
            }
        }
    }
}

/// Indices of the k largest values, largest first (ties: lower index first).
func topIndices(_ values: ArraySlice<Float>, k: Int) -> [Int] {
    let base = values.startIndex
    var heap: [(value: Float, index: Int)] = []
    heap.reserveCapacity(k + 1)
    for i in values.indices {
        let v = values[i]
        if heap.count < k {
            heap.append((v, i - base))
            if heap.count == k { heap.sort { $0.value > $1.value || ($0.value == $1.value && $0.index < $1.index) } }
        } else if v > heap[k - 1].value {
            var p = k - 1
            while p > 0 && heap[p - 1].value < v { p -= 1 }
            heap.insert((v, i - base), at: p)
            heap.removeLast()
        }
    }
    if heap.count < k { heap.sort { $0.value > $1.value || ($0.value == $1.value && $0.index < $1.index) } }
    return heap.map(\.index)
}
