import Foundation

/// Trains a `Codebook` by residual k-means: k-means on the vectors, then on what the
/// first level's centroids leave, and so on for every level. Deterministic for a seed
/// (and a BLAS thread count: OpenBLAS sums in an order that depends on it).
public struct ResidualKMeans: Sendable {
    public struct Options: Sendable, Equatable {
        /// Codes per level, e.g. [256, 256, 256].
        public var sizes: [Int]
        public var maxIterations: Int
        public var seed: UInt64
        /// Cap each cluster at ⌈n / K⌉ training vectors during the Lloyd iterations, so
        /// codes are used evenly. Assignment (and the stored statistics) stays nearest-centroid.
        public var balanced: Bool

        public init(sizes: [Int] = [256, 256, 256], maxIterations: Int = 20, seed: UInt64 = 0, balanced: Bool = false) {
            self.sizes = sizes
            self.maxIterations = maxIterations
            self.seed = seed
            self.balanced = balanced
        }
    }

    public var options: Options

    public init(_ options: Options = Options()) { self.options = options }

    /// Trains on `count` row-major vectors of `dim` values. `progress` gets one line per level.
    public func train(
        _ vectors: [Float], count: Int, dim: Int, modelID: String, progress: (String) -> Void = { _ in }
    ) throws(CodebookError) -> Codebook {
        guard dim > 0, count > 0, vectors.count == count * dim else {
            throw .invalidTraining("\(vectors.count) values are not \(count) vectors of \(dim) dims")
        }
        guard !options.sizes.isEmpty, options.sizes.allSatisfy({ $0 >= 1 }) else {
            throw .invalidTraining("levels need at least one code each, got sizes \(options.sizes)")
        }
        guard let largest = options.sizes.max(), count >= largest else {
            throw .invalidTraining("\(count) vectors are fewer than the \(options.sizes.max() ?? 0) codes of a level")
        }
        guard options.maxIterations >= 1 else { throw .invalidTraining("iterations must be at least 1") }
        guard vectors.allSatisfy(\.isFinite) else { throw .invalidTraining("the vectors contain NaN or infinity") }

        var generator = SeededGenerator(seed: options.seed)
        var residual = vectors
        var levels: [[Float]] = []
        var iterations: [Int] = []
        var repairs: [Int] = []
        var perplexity: [Double] = []
        var codes = [[Int]](repeating: [], count: count)
        for (l, k) in options.sizes.enumerated() {
            let kmeans = KMeansLevel(k: k, dim: dim, maxIterations: options.maxIterations, balanced: options.balanced)
            let result = residual.withUnsafeBufferPointer { kmeans.train(rows: $0.baseAddress!, count: count, generator: &generator) }
            // Codes and the next level's residual follow the rule the worker applies:
            // nearest centroid, balanced or not.
            let search = NearestCentroid(centroids: result.centroids, k: k, dim: dim)
            var levelCodes: [Int] = []
            var distances: [Float] = []
            var usage = [Int](repeating: 0, count: k)
            residual.withUnsafeMutableBufferPointer { r in
                search.assign(rows: r.baseAddress!, count: count, codes: &levelCodes, distances: &distances)
                for row in 0..<count {
                    let c = levelCodes[row]
                    usage[c] += 1
                    codes[row].append(c)
                    for i in 0..<dim { r[row * dim + i] -= result.centroids[c * dim + i] }
                }
            }
            levels.append(result.centroids)
            iterations.append(result.iterations)
            repairs.append(result.repairs)
            perplexity.append(CodebookStatistics.perplexity(usage))
            let mse = distances.reduce(0.0) { $0 + Double($1) } / Double(count)
            progress("level \(l): \(result.iterations) iterations, \(result.repairs) empty clusters repaired, perplexity \(String(format: "%.1f", perplexity[l])) of \(k), residual mse \(String(format: "%.5f", mse))")
        }
        var squaredError = 0.0, squaredNorm = 0.0
        for i in 0..<vectors.count {
            squaredError += Double(residual[i]) * Double(residual[i])
            squaredNorm += Double(vectors[i]) * Double(vectors[i])
        }
        let statistics = CodebookStatistics(
            items: count, seed: options.seed, balanced: options.balanced, iterations: iterations, repairs: repairs,
            meanSquaredError: squaredError / Double(count), relativeError: squaredNorm > 0 ? squaredError / squaredNorm : 0,
            perplexity: perplexity, collisionShare: CodebookStatistics.collisionShare(codes))
        return try Codebook(modelID: modelID, dim: dim, levels: levels, statistics: statistics)
    }
}
