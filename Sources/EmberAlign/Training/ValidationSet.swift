import EmberModel

/// The validation split as training uses it: a fixed, seeded sample of each source's
/// validation pairs, retrieved among every train and validation item.
struct ValidationSet {
    /// Random other pairs scored per validation pair when choosing the F1 threshold.
    static let negativesPerPositive = 16
    let sources: [AlignSource]
    let sets: [PairSet]
    let samples: [[Int]]
    /// Item rows that are candidates (not cold), and each row's candidate index.
    let candidates: [Int]
    let candidateIndex: [Int: Int]

    init(pairs: PairBuilder.Result, sources: [AlignSource], items: ItemVectors, limit: Int, generator: inout SeededGenerator) {
        self.sources = sources
        sets = sources.map { pairs.validation[$0] ?? PairSet(source: $0, dim: items.dim) }
        samples = sets.map { AlignTrainer.sample($0.count, limit, &generator).sorted() }
        var rows = Set<Int>()
        for source in sources {
            for set in [pairs.train[source], pairs.validation[source]].compactMap({ $0 }) {
                for p in set.positives { rows.insert(Int(p)) }
                for a in set.anchorItems { for r in a { rows.insert(Int(r)) } }
            }
        }
        candidates = rows.sorted()
        candidateIndex = Dictionary(uniqueKeysWithValues: candidates.enumerated().map { ($1, $0) })
    }

    /// Validation positives of every source, `perSource` each (base space), or nil when none.
    func pooledPositives(items: ItemVectors, perSource: Int) -> [Float]? {
        let pooled = zip(sets, samples).flatMap { set, sample in set.positiveVectors(Array(sample.prefix(perSource)), items: items) }
        return pooled.isEmpty ? nil : pooled
    }

    struct Recall {
        var bySize: [Double]
        var bySource: [Double]
        var mean: Double { bySize.isEmpty ? 0 : bySize.reduce(0, +) / Double(bySize.count) }
    }

    /// Recall@k of each sampled pair's positive among the candidates, mean over sources
    /// (sources without validation pairs are left out).
    func recall(_ head: TrainableHead, sizes: [Int], k: Int, items: ItemVectors) -> Recall {
        let y = head.forward(items.gather(candidates), rows: candidates.count).y
        var bySize = [Double](repeating: 0, count: sizes.count), bySource: [Double] = []
        var counted = 0
        for (set, sample) in zip(sets, samples) where !sample.isEmpty {
            let a = head.forward(set.anchors(sample, items: items), rows: sample.count).y
            let relevant = sample.map { [candidateIndex[Int(set.positives[$0])]!] }
            for (i, d) in sizes.enumerated() {
                let q = MatryoshkaInfoNCE.prefixNormalized(a, rows: sample.count, dim: head.outputDim, prefix: d).0
                let c = MatryoshkaInfoNCE.prefixNormalized(y, rows: candidates.count, dim: head.outputDim, prefix: d).0
                let r = Retrieval.recall(queries: q, candidates: c, dim: d, relevant: relevant, k: k)
                bySize[i] += r
                if i == 0 { bySource.append(r) }
            }
            counted += 1
        }
        return Recall(bySize: bySize.map { counted > 0 ? $0 / Double(counted) : 0 }, bySource: bySource)
    }

    /// The source's F1 threshold in the head's space at `dims`: sampled validation pairs
    /// against the same anchors with another pair's positive.
    func threshold(_ source: AlignSource, head: TrainableHead, dims: Int, items: ItemVectors, generator: inout SeededGenerator) -> Float? {
        guard let s = sources.firstIndex(of: source), samples[s].count >= 2 else { return nil }
        let set = sets[s], sample = samples[s], n = sample.count
        let a = MatryoshkaInfoNCE.prefixNormalized(head.forward(set.anchors(sample, items: items), rows: n).y, rows: n, dim: head.outputDim, prefix: dims).0
        let p = MatryoshkaInfoNCE.prefixNormalized(head.forward(set.positiveVectors(sample, items: items), rows: n).y, rows: n, dim: head.outputDim, prefix: dims).0
        func dot(_ i: Int, _ j: Int) -> Float {
            var sum: Float = 0
            for t in 0..<dims { sum += a[i * dims + t] * p[j * dims + t] }
            return sum
        }
        // Negatives outnumber positives as in a batch (an anchor meets one positive and
        // many others): with one negative per positive, "everything is a positive" scores
        // F1 2/3 and noisy sources would get a threshold low enough to drop most negatives.
        var positives: [Float] = [], negatives: [Float] = []
        for i in 0..<n {
            positives.append(dot(i, i))
            for _ in 0..<min(Self.negativesPerPositive, n - 1) {
                let j = (i + 1 + generator.index(below: n - 1)) % n
                if set.positives[sample[j]] != set.positives[sample[i]] { negatives.append(dot(i, j)) }
            }
        }
        return F1Threshold.best(positives: positives, negatives: negatives)?.threshold
    }
}
