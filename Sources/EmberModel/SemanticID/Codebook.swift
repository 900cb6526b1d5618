import Foundation

/// A residual-quantization codebook (semantic IDs, as in TIGER and the SAIL report):
/// level 0 quantizes the embedding, each next level the residual the previous ones
/// left. An item's semantic ID is its L codes; items that share a prefix are near.
///
/// Shapes: `levels[l]` is (sizes[l], dim) row-major.
public struct Codebook: Sendable, Equatable {
    /// The model whose embeddings it was trained on (`omni-small@<hash>`).
    public let modelID: String
    public let dim: Int
    public let levels: [[Float]]
    public let statistics: CodebookStatistics
    /// Each level's centroids with their squared norms, computed once: recomputing them
    /// per item took 1.5 ms of the worker's assignment (3 × 256 × 2048 multiply-adds).
    let searches: [NearestCentroid]

    /// Codes per level (K of each level).
    public var sizes: [Int] { levels.map { $0.count / dim } }

    public init(modelID: String, dim: Int, levels: [[Float]], statistics: CodebookStatistics) throws(CodebookError) {
        guard dim > 0, !levels.isEmpty else { throw .invalidTraining("a codebook needs dim > 0 and at least one level") }
        for (l, level) in levels.enumerated() where level.isEmpty || level.count % dim != 0 {
            throw .invalidTraining("level \(l) holds \(level.count) values, not a whole number of \(dim)-dim centroids")
        }
        self.modelID = modelID
        self.dim = dim
        self.levels = levels
        self.statistics = statistics
        searches = levels.map { NearestCentroid(centroids: $0, k: $0.count / dim, dim: dim) }
    }

    /// The codes of `count` row-major vectors: one GEMM per level over all of them.
    /// Returns `count` arrays of `levels.count` codes.
    public func assign(_ vectors: [Float], count: Int) throws(CodebookError) -> [[Int]] {
        guard vectors.count == count * dim else { throw .dimensionMismatch(got: count == 0 ? vectors.count : vectors.count / count, expected: dim) }
        guard count > 0 else { return [] }
        var residual = vectors
        var codes = [[Int]](repeating: [], count: count)
        for (level, search) in zip(levels, searches) {
            var levelCodes: [Int] = []
            var distances: [Float] = []
            residual.withUnsafeMutableBufferPointer { r in
                search.assign(rows: r.baseAddress!, count: count, codes: &levelCodes, distances: &distances)
                for row in 0..<count {
                    let c = levelCodes[row] * dim
                    for i in 0..<dim { r[row * dim + i] -= level[c + i] }
                }
            }
            for row in 0..<count { codes[row].append(levelCodes[row]) }
        }
        return codes
    }

    /// The codes of one vector.
    public func codes(for vector: [Float]) throws(CodebookError) -> [Int] {
        try assign(vector, count: 1)[0]
    }

    /// The sum of the codes' centroids: what the semantic ID says the vector is.
    public func reconstruct(_ codes: [Int]) -> [Float] {
        var out = [Float](repeating: 0, count: dim)
        for (level, code) in zip(levels, codes) {
            for i in 0..<dim { out[i] += level[code * dim + i] }
        }
        return out
    }

    /// The compact string form of a semantic ID: codes joined by "-" (`12-201-7`).
    public static func string(_ codes: [Int]) -> String {
        codes.map(String.init).joined(separator: "-")
    }
}

/// How a codebook came out of training, stored with it.
public struct CodebookStatistics: Sendable, Equatable {
    /// Vectors it was trained on.
    public var items: Int
    public var seed: UInt64
    public var balanced: Bool
    /// Lloyd iterations run per level.
    public var iterations: [Int]
    /// Empty clusters repaired per level, over all iterations.
    public var repairs: [Int]
    /// Mean over the training vectors of ‖x − reconstruction‖².
    public var meanSquaredError: Double
    /// `meanSquaredError` over the mean ‖x‖² (0: exact, 1: no better than zero).
    public var relativeError: Double
    /// exp(entropy) of each level's code usage: K when every code is used equally.
    public var perplexity: [Double]
    /// Share of training vectors whose full code is also another vector's.
    public var collisionShare: Double

    public init(
        items: Int, seed: UInt64, balanced: Bool, iterations: [Int], repairs: [Int], meanSquaredError: Double,
        relativeError: Double, perplexity: [Double], collisionShare: Double
    ) {
        self.items = items
        self.seed = seed
        self.balanced = balanced
        self.iterations = iterations
        self.repairs = repairs
        self.meanSquaredError = meanSquaredError
        self.relativeError = relativeError
        self.perplexity = perplexity
        self.collisionShare = collisionShare
    }

    /// Perplexity of a code-usage histogram.
    public static func perplexity(_ counts: [Int]) -> Double {
        let total = Double(counts.reduce(0, +))
        guard total > 0 else { return 0 }
        var entropy = 0.0
        for c in counts where c > 0 {
            let p = Double(c) / total
            entropy -= p * log(p)
        }
        return exp(entropy)
    }

    /// Share of items whose full code another item has too.
    public static func collisionShare(_ codes: [[Int]]) -> Double {
        guard !codes.isEmpty else { return 0 }
        var counts: [[Int]: Int] = [:]
        for c in codes { counts[c, default: 0] += 1 }
        let colliding = counts.values.reduce(0) { $0 + ($1 > 1 ? $1 : 0) }
        return Double(colliding) / Double(codes.count)
    }
}
