import Foundation

/// One level of residual k-means: k-means++ seeding, Lloyd iterations with BLAS
/// distances, empty-cluster repair and optional balanced assignment.
///
/// Shapes: rows (n, dim) row-major; centroids (k, dim).
struct KMeansLevel {
    struct Result {
        var centroids: [Float]
        var iterations: Int
        /// Empty clusters re-seeded with far points over all iterations.
        var repairs: Int
    }

    let k: Int
    let dim: Int
    let maxIterations: Int
    let balanced: Bool

    /// Seeding runs k-means++ on a sample of this many rows per centroid: D² sampling
    /// needs one pass over the rows per centroid, which on all 100k × 2048 rows would
    /// read 200 GB for k = 256; a 32·k sample keeps it to seconds and seeds as well.
    static let seedingSamplePerCentroid = 32

    /// Stop when an iteration improves the summed squared distance by less than this
    /// share (or no row changes cluster).
    static let relativeTolerance = 1e-5

    func train(rows: UnsafePointer<Float>, count n: Int, generator: inout SeededGenerator) -> Result {
        var centroids = seed(rows: rows, count: n, generator: &generator)
        var codes = [Int](repeating: -1, count: n)
        var previousInertia = Double.infinity
        var repairs = 0
        var iteration = 0
        while iteration < maxIterations {
            iteration += 1
            let search = NearestCentroid(centroids: centroids, k: k, dim: dim)
            var newCodes: [Int] = []
            var distances: [Float] = []
            if balanced {
                assignBalanced(search, rows: rows, count: n, codes: &newCodes, distances: &distances)
            } else {
                search.assign(rows: rows, count: n, codes: &newCodes, distances: &distances)
            }
            repairs += repairEmptyClusters(codes: &newCodes, distances: &distances)
            let changed = zip(codes, newCodes).reduce(0) { $0 + ($1.0 == $1.1 ? 0 : 1) }
            codes = newCodes
            centroids = means(rows: rows, count: n, codes: codes)
            let inertia = distances.reduce(0.0) { $0 + Double($1) }
            if changed == 0 || (previousInertia.isFinite && previousInertia - inertia <= Self.relativeTolerance * previousInertia) { break }
            previousInertia = inertia
        }
        return Result(centroids: centroids, iterations: iteration, repairs: repairs)
    }

    /// Greedy k-means++ (Arthur & Vassilvitskii 2007; the greedy variant scikit-learn
    /// uses) on a seeded sample: the first centroid uniformly; for each next one,
    /// max(8, 2 + ⌊ln k⌋) candidates drawn with probability proportional to their squared
    /// distance from the nearest centroid so far, keeping the candidate that lowers the
    /// summed distance most. With scikit-learn's 2 + ⌊ln k⌋ (4 for k = 12) a level
    /// merged two of 12 well-separated clusters for one seed in three on the test data:
    /// late in seeding most of the distance mass sits in covered clusters, and all
    /// candidates can land there. Candidates share one GEMM, so 8 cost little.
    func seed(rows: UnsafePointer<Float>, count n: Int, generator: inout SeededGenerator) -> [Float] {
        let sampleCount = min(n, k * Self.seedingSamplePerCentroid)
        // Partial Fisher–Yates: the first sampleCount of a seeded permutation, in order.
        var order = Array(0..<n)
        for i in 0..<sampleCount {
            order.swapAt(i, i + generator.index(below: n - i))
        }
        var sample = [Float](repeating: 0, count: sampleCount * dim)
        var sampleNorms = [Float](repeating: 0, count: sampleCount)
        for s in 0..<sampleCount {
            let source = rows + order[s] * dim
            var norm: Float = 0
            for i in 0..<dim {
                sample[s * dim + i] = source[i]
                norm += source[i] * source[i]
            }
            sampleNorms[s] = norm
        }
        let trials = max(8, 2 + Int(log(Double(k))))
        var centroids = [Float](repeating: 0, count: k * dim)
        var nearest = [Float](repeating: .infinity, count: sampleCount)
        var candidateRows = [Float](repeating: 0, count: trials * dim)
        var dots = [Float](repeating: 0, count: sampleCount * trials)
        var candidates = [generator.index(below: sampleCount)]
        for j in 0..<k {
            // dots (sampleCount, candidates) = sample · candidatesᵀ: one GEMM for all trials.
            let c = candidates.count
            for (t, row) in candidates.enumerated() {
                for i in 0..<dim { candidateRows[t * dim + i] = sample[row * dim + i] }
            }
            sample.withUnsafeBufferPointer { a in
                candidateRows.withUnsafeBufferPointer { b in
                    dots.withUnsafeMutableBufferPointer { d in
                        gemm(.none, .transposed, m: sampleCount, n: c, k: dim, a: a.baseAddress!, b: b.baseAddress!, c: d.baseAddress!)
                    }
                }
            }
            var best = 0
            var bestTotal = Double.infinity
            for t in 0..<c {
                var total = 0.0
                for s in 0..<sampleCount {
                    total += Double(min(nearest[s], max(0, sampleNorms[s] - 2 * dots[s * c + t] + sampleNorms[candidates[t]])))
                }
                if total < bestTotal {
                    best = t
                    bestTotal = total
                }
            }
            for i in 0..<dim { centroids[j * dim + i] = candidateRows[best * dim + i] }
            for s in 0..<sampleCount {
                nearest[s] = min(nearest[s], max(0, sampleNorms[s] - 2 * dots[s * c + best] + sampleNorms[candidates[best]]))
            }
            guard j + 1 < k else { break }
            let total = nearest.reduce(0.0) { $0 + Double($1) }
            candidates = (0..<trials).map { _ in
                // Every sampled row on a centroid (duplicates): uniform; the empty-cluster
                // repair spreads such centroids later.
                guard total > 0 else { return generator.index(below: sampleCount) }
                var target = generator.unit() * total
                for s in 0..<sampleCount {
                    target -= Double(nearest[s])
                    if target < 0 { return s }
                }
                return sampleCount - 1
            }
        }
        return centroids
    }

    /// Capacity-limited assignment that keeps codes evenly used: each cluster takes at
    /// most ⌈n / k⌉ rows. Rows that lose most by not getting their nearest cluster
    /// (largest gap to their second nearest) choose first; each takes its nearest
    /// cluster with room left.
    func assignBalanced(_ search: NearestCentroid, rows: UnsafePointer<Float>, count n: Int, codes: inout [Int], distances: inout [Float]) {
        var scores = [Float](repeating: 0, count: n * k)
        var scratch: [Float] = []
        search.forEachBlock(rows: rows, count: n, scratch: &scratch) { start, m, block in
            for i in 0..<(m * k) { scores[start * k + i] = block[i] }
        }
        var regret = [Float](repeating: 0, count: n)
        for r in 0..<n {
            var best = Float.infinity, second = Float.infinity
            for j in 0..<k {
                let s = scores[r * k + j]
                if s < best { second = best; best = s } else if s < second { second = s }
            }
            regret[r] = second - best
        }
        let order = (0..<n).sorted { regret[$0] != regret[$1] ? regret[$0] > regret[$1] : $0 < $1 }
        let capacity = (n + k - 1) / k
        var counts = [Int](repeating: 0, count: k)
        codes = [Int](repeating: 0, count: n)
        distances = [Float](repeating: 0, count: n)
        for r in order {
            var best = -1
            var bestScore = Float.infinity
            for j in 0..<k where counts[j] < capacity && (best < 0 || scores[r * k + j] < bestScore) {
                best = j
                bestScore = scores[r * k + j]
            }
            counts[best] += 1
            codes[r] = best
            let x = rows + r * dim
            var norm: Float = 0
            for i in 0..<dim { norm += x[i] * x[i] }
            distances[r] = max(0, norm + bestScore)
        }
    }

    /// Gives every empty cluster the row farthest from its centroid (taken from a
    /// cluster that keeps at least one row), so no code is wasted. Returns how many.
    func repairEmptyClusters(codes: inout [Int], distances: inout [Float]) -> Int {
        var counts = [Int](repeating: 0, count: k)
        for c in codes { counts[c] += 1 }
        let empty = (0..<k).filter { counts[$0] == 0 }
        guard !empty.isEmpty else { return 0 }
        let farthest = codes.indices.sorted { distances[$0] != distances[$1] ? distances[$0] > distances[$1] : $0 < $1 }
        var next = 0
        var repaired = 0
        for j in empty {
            while next < farthest.count && counts[codes[farthest[next]]] <= 1 { next += 1 }
            guard next < farthest.count else { break }
            let r = farthest[next]
            next += 1
            counts[codes[r]] -= 1
            codes[r] = j
            counts[j] = 1
            distances[r] = 0
            repaired += 1
        }
        return repaired
    }

    /// Each centroid becomes the mean of its rows (a cluster left empty keeps zeros; only
    /// possible with fewer distinct rows than k).
    func means(rows: UnsafePointer<Float>, count n: Int, codes: [Int]) -> [Float] {
        var sums = [Float](repeating: 0, count: k * dim)
        var counts = [Int](repeating: 0, count: k)
        sums.withUnsafeMutableBufferPointer { s in
            for r in 0..<n {
                let c = codes[r]
                counts[c] += 1
                let target = s.baseAddress! + c * dim
                let x = rows + r * dim
                for i in 0..<dim { target[i] += x[i] }
            }
            for j in 0..<k where counts[j] > 0 {
                let scale = 1 / Float(counts[j])
                for i in 0..<dim { s[j * dim + i] *= scale }
            }
        }
        return sums
    }
}
