/// Nearest-centroid search with BLAS: ‖r − c‖² = ‖r‖² − 2 r·c + ‖c‖², and ‖r‖² is the same
/// for every centroid, so the nearest c minimizes ‖c‖² − 2 r·c. One GEMM per block of
/// rows gives all the dot products.
///
/// Shapes: rows (n, dim), centroids (k, dim), centroidNorms (k) = ‖c‖², scores (block, k).
struct NearestCentroid: Sendable, Equatable {
    /// Rows per GEMM: large enough for BLAS to run at full speed, small enough that the
    /// score block (block × k floats, 8 MB for k = 256) stays small.
    static let block = 8192

    let centroids: [Float]
    let centroidNorms: [Float]
    let k: Int
    let dim: Int

    init(centroids: [Float], k: Int, dim: Int) {
        self.centroids = centroids
        self.k = k
        self.dim = dim
        centroidNorms = (0..<k).map { j in
            var s: Float = 0
            for i in 0..<dim { s += centroids[j * dim + i] * centroids[j * dim + i] }
            return s
        }
    }

    /// Calls `body(firstRow, rowCount, scores)` for each block of rows; `scores[r * k + j]`
    /// is ‖c_j‖² − 2 r·c_j, i.e. the squared distance minus ‖r‖².
    func forEachBlock(
        rows: UnsafePointer<Float>, count n: Int, scratch: inout [Float],
        _ body: (Int, Int, UnsafePointer<Float>) -> Void
    ) {
        let block = Self.block
        if scratch.count < min(block, n) * k { scratch = [Float](repeating: 0, count: min(block, n) * k) }
        centroids.withUnsafeBufferPointer { c in
            scratch.withUnsafeMutableBufferPointer { s in
                var start = 0
                while start < n {
                    let m = min(block, n - start)
                    // scores = rows · centroidsᵀ, then ‖c‖² − 2·score.
                    gemm(.none, .transposed, m: m, n: k, k: dim, a: rows + start * dim, b: c.baseAddress!, c: s.baseAddress!)
                    for r in 0..<m {
                        let row = s.baseAddress! + r * k
                        for j in 0..<k { row[j] = centroidNorms[j] - 2 * row[j] }
                    }
                    body(start, m, UnsafePointer(s.baseAddress!))
                    start += m
                }
            }
        }
    }

    /// The index of the nearest centroid of each row (ties: the lowest index) and its
    /// squared distance.
    func assign(rows: UnsafePointer<Float>, count n: Int, codes: inout [Int], distances: inout [Float]) {
        var scratch: [Float] = []
        codes = [Int](repeating: 0, count: n)
        distances = [Float](repeating: 0, count: n)
        forEachBlock(rows: rows, count: n, scratch: &scratch) { start, m, scores in
            for r in 0..<m {
                let row = scores + r * k
                var best = 0
                var bestScore = row[0]
                for j in 1..<k where row[j] < bestScore {
                    best = j
                    bestScore = row[j]
                }
                let x = rows + (start + r) * dim
                var norm: Float = 0
                for i in 0..<dim { norm += x[i] * x[i] }
                codes[start + r] = best
                distances[start + r] = max(0, norm + bestScore)
            }
        }
    }
}
