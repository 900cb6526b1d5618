import EmberModel
import Foundation

/// Trains a projection head on pairs from one or more sources: per step a source is drawn
/// by its sampling weight, a batch of its pairs goes through the head (anchors and
/// positives alike), Matryoshka InfoNCE with in-batch negatives (F1-threshold filter) gives
/// the gradients, AdamW updates. After each epoch the validation split gives recall@k and
/// refreshes each source's threshold in the current head's space; training stops after
/// `patience` epochs without improvement and returns the best head. Deterministic: the
/// seed fixes initialization, sampling and every order (for a fixed BLAS thread count).
public struct AlignTrainer: Sendable {
    public let configuration: AlignConfiguration

    public init(_ configuration: AlignConfiguration) { self.configuration = configuration }

    public struct Epoch: Sendable {
        public var epoch: Int
        public var loss: Double
        /// Validation recall@k per Matryoshka size, largest first (mean over sources).
        public var recall: [Double]
        public var filteredShare: Double
    }

    public struct Result: Sendable {
        public var head: TrainableHead
        public var sources: [AlignSource]
        public var weights: [Double]
        public var distances: [Double]
        /// Per source: the F1 threshold used last, nil when it has no validation pairs or the filter is off.
        public var thresholds: [Float?]
        public var history: [Epoch]
        public var bestEpoch: Int
        /// Validation recall@k of the returned head per size, and per source at the largest size.
        public var recall: [Double]
        public var recallBySource: [Double]
    }

    public func train(pairs: PairBuilder.Result, items: ItemVectors, progress: (String) -> Void = { _ in }) throws -> Result {
        let c = configuration
        let sources = pairs.train.keys.sorted().filter { pairs.train[$0]!.count > 0 }
        guard !sources.isEmpty else { throw AlignDataError("no training pairs in any source") }
        guard c.matryoshka.max() == c.outputDim else { throw AlignDataError("the largest Matryoshka size must equal the output size \(c.outputDim)") }
        var generator = SeededGenerator(seed: c.seed)
        var head = TrainableHead(layers: c.layers, inputDim: items.dim, outputDim: c.outputDim, generator: &generator)
        let loss = MatryoshkaInfoNCE(sizes: c.matryoshka, temperature: c.temperature)
        var optimizer = AdamW(shapes: head.parameters.map(\.count), learningRate: c.learningRate, weightDecay: c.weightDecay, decayed: Set(head.weightIndices))
        let validation = ValidationSet(pairs: pairs, sources: sources, items: items, limit: c.validationPairs, generator: &generator)

        // Source weights.
        var distances = [Double](repeating: 0, count: sources.count)
        var weights = [Double](repeating: 1 / Double(sources.count), count: sources.count)
        if c.sinkhorn, sources.count > 1, let target = validation.pooledPositives(items: items, perSource: 256 / sources.count + 1) {
            for (s, source) in sources.enumerated() {
                let set = pairs.train[source]!
                let sample = Self.sample(set.count, 256, &generator)
                distances[s] = Sinkhorn.distance(set.positiveVectors(sample, items: items), target, dim: items.dim).cost
            }
            weights = Sinkhorn.weights(distances: distances, temperature: c.sinkhornTemperature)
        }
        progress("sources " + sources.enumerated().map { "\($0.element.rawValue) \(pairs.train[$0.element]!.count) pairs weight \(String(format: "%.3f", weights[$0.offset]))" + (c.sinkhorn && sources.count > 1 ? " (sinkhorn \(String(format: "%.4f", distances[$0.offset])))" : "") }.joined(separator: ", "))

        let totalPairs = sources.reduce(0) { $0 + pairs.train[$1]!.count }
        let steps = c.stepsPerEpoch ?? min(400, max(10, (totalPairs + c.batchSize - 1) / c.batchSize))
        var thresholds = [Float?](repeating: nil, count: sources.count)
        var best = validation.recall(head, sizes: c.matryoshka, k: c.recallK, items: items)
        var bestHead = head, bestEpoch = 0, worse = 0
        var history = [Epoch(epoch: 0, loss: .nan, recall: best.bySize, filteredShare: 0)]
        progress("epoch 0: validation recall@\(c.recallK) \(Self.format(best.bySize, sizes: c.matryoshka)) (the untrained head)")
        for epoch in 1...max(1, c.maxEpochs) {
            if c.hardNegativeFilter {
                thresholds = sources.indices.map { validation.threshold(sources[$0], head: head, dims: c.outputDim, items: items, generator: &generator) }
            }
            var lossSum = 0.0, filtered = 0, candidates = 0
            for _ in 0..<steps {
                let s = Self.draw(weights, &generator)
                let set = pairs.train[sources[s]]!
                let batch = Self.sample(set.count, c.batchSize, &generator)
                let b = batch.count
                guard b >= 2 else { continue }
                let x = set.anchors(batch, items: items) + set.positiveVectors(batch, items: items)
                let (y, cache) = head.forward(x, rows: 2 * b)
                var excluded = [Bool](repeating: false, count: b * b)
                for i in 0..<b {
                    let anchorItem = set.anchorItem(batch[i])
                    for j in 0..<b where j != i {
                        let pj = Int(set.positives[batch[j]])
                        excluded[i * b + j] = pj == Int(set.positives[batch[i]]) || pj == anchorItem
                    }
                }
                let out = loss(
                    anchors: Array(y[0..<(b * c.outputDim)]), positives: Array(y[(b * c.outputDim)...]), rows: b, dim: c.outputDim,
                    excluded: excluded, threshold: thresholds[s])
                let gradients = head.backward(out.dYa + out.dYp, cache: cache).parameters
                optimizer.update(&head.parameters, gradients: gradients)
                lossSum += out.loss
                filtered += out.filtered
                candidates += b * (b - 1)
            }
            let recall = validation.recall(head, sizes: c.matryoshka, k: c.recallK, items: items)
            let entry = Epoch(epoch: epoch, loss: lossSum / Double(steps), recall: recall.bySize, filteredShare: candidates > 0 ? Double(filtered) / Double(candidates) : 0)
            history.append(entry)
            let improved = recall.mean > best.mean + 1e-4
            progress(
                "epoch \(epoch)/\(c.maxEpochs): loss \(String(format: "%.4f", entry.loss)), validation recall@\(c.recallK) \(Self.format(recall.bySize, sizes: c.matryoshka))"
                    + (c.hardNegativeFilter ? ", filtered \(String(format: "%.1f", entry.filteredShare * 100))% of negatives, thresholds " + zip(sources, thresholds).map { "\($0.rawValue) \($1.map { String(format: "%.3f", $0) } ?? "none")" }.joined(separator: " ") : "")
                    + (improved ? "" : " (no better: \(worse + 1)/\(c.patience))"))
            if improved {
                best = recall
                bestHead = head
                bestEpoch = epoch
                worse = 0
            } else {
                worse += 1
                if worse >= c.patience { break }
            }
        }
        return Result(
            head: bestHead, sources: sources, weights: weights, distances: distances, thresholds: thresholds, history: history,
            bestEpoch: bestEpoch, recall: best.bySize, recallBySource: best.bySource)
    }

    static func format(_ values: [Double], sizes: [Int]) -> String {
        zip(sizes, values).map { "\($0): \(String(format: "%.3f", $1))" }.joined(separator: ", ")
    }

    /// `k` distinct indices below `n` in random order (all of them, shuffled, when n ≤ k).
    static func sample(_ n: Int, _ k: Int, _ generator: inout SeededGenerator) -> [Int] {
        if n <= k {
            var all = Array(0..<n)
            for i in stride(from: n - 1, to: 0, by: -1) { all.swapAt(i, generator.index(below: i + 1)) }
            return all
        }
        var chosen = Set<Int>(), out: [Int] = []
        while out.count < k {
            let i = generator.index(below: n)
            if chosen.insert(i).inserted { out.append(i) }
        }
        return out
    }

    static func draw(_ weights: [Double], _ generator: inout SeededGenerator) -> Int {
        var u = generator.unit()
        for (i, w) in weights.enumerated() {
            if u < w { return i }
            u -= w
        }
        return weights.count - 1
    }
}
