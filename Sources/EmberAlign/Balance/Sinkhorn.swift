import EmberModel
import Foundation

/// Entropy-regularized optimal transport (Cuturi 2013), iterated in the log domain so a
/// small ε does not underflow: the plan T = diag(e^f) · e^(−C/ε) · diag(e^g) whose rows
/// sum to `a` and columns to `b`.
public enum Sinkhorn {
    public struct Transport: Sendable {
        /// (rows, columns), row-major.
        public var plan: [Double]
        /// ⟨T, C⟩: the transport cost.
        public var cost: Double
        public var iterations: Int
    }

    /// Iterates until every row sum is within `tolerance` of `a` (columns are exact after
    /// each column update), checked every 10 iterations.
    public static func transport(
        cost c: [Double], rows n: Int, columns m: Int, a: [Double], b: [Double],
        epsilon: Double = 0.05, maxIterations: Int = 2000, tolerance: Double = 1e-10
    ) -> Transport {
        precondition(c.count == n * m && a.count == n && b.count == m)
        // Potentials in units of ε: T_ij = exp(F_i + G_j − C_ij/ε).
        let kernel = c.map { -$0 / epsilon }
        var f = [Double](repeating: 0, count: n), g = [Double](repeating: 0, count: m)
        let logA = a.map { log($0) }, logB = b.map { log($0) }
        var column = [Double](repeating: 0, count: n)
        var iterations = 0
        while iterations < maxIterations {
            iterations += 1
            for i in 0..<n {
                var top = -Double.infinity
                for j in 0..<m { top = max(top, g[j] + kernel[i * m + j]) }
                var sum = 0.0
                for j in 0..<m { sum += exp(g[j] + kernel[i * m + j] - top) }
                f[i] = logA[i] - top - log(sum)
            }
            for j in 0..<m {
                var top = -Double.infinity
                for i in 0..<n {
                    column[i] = f[i] + kernel[i * m + j]
                    top = max(top, column[i])
                }
                var sum = 0.0
                for i in 0..<n { sum += exp(column[i] - top) }
                g[j] = logB[j] - top - log(sum)
            }
            if iterations % 10 == 0 {
                var worst = 0.0
                for i in 0..<n {
                    var sum = 0.0
                    for j in 0..<m { sum += exp(f[i] + g[j] + kernel[i * m + j]) }
                    worst = max(worst, abs(sum - a[i]))
                }
                if worst < tolerance { break }
            }
        }
        var plan = [Double](repeating: 0, count: n * m)
        var total = 0.0
        for i in 0..<n {
            for j in 0..<m {
                plan[i * m + j] = exp(f[i] + g[j] + kernel[i * m + j])
                total += plan[i * m + j] * c[i * m + j]
            }
        }
        return Transport(plan: plan, cost: total, iterations: iterations)
    }

    /// Sampling weights of the sources: a softmax of −(Sinkhorn distance to the validation
    /// split) / `temperature`, so a source whose positives are distributed like the
    /// validation split's gets more of the batches. Sums to 1.
    public static func weights(distances: [Double], temperature: Double) -> [Double] {
        guard let best = distances.min() else { return [] }
        let scores = distances.map { exp(-($0 - best) / temperature) }
        let sum = scores.reduce(0, +)
        return scores.map { $0 / sum }
    }

    /// The Sinkhorn distance between two sets of unit vectors (rows of `x` and `y`, `dim`
    /// wide) with uniform weights and cosine distance 1 − x·y as the cost.
    public static func distance(_ x: [Float], _ y: [Float], dim: Int, epsilon: Double = 0.05) -> Transport {
        let n = x.count / dim, m = y.count / dim
        var dots = [Float](repeating: 0, count: n * m)
        x.withUnsafeBufferPointer { x in
            y.withUnsafeBufferPointer { y in
                dots.withUnsafeMutableBufferPointer { d in
                    gemm(.none, .transposed, m: n, n: m, k: dim, a: x.baseAddress!, b: y.baseAddress!, c: d.baseAddress!)
                }
            }
        }
        let cost = dots.map { 1 - Double($0) }
        return transport(
            cost: cost, rows: n, columns: m, a: [Double](repeating: 1 / Double(n), count: n),
            b: [Double](repeating: 1 / Double(m), count: m), epsilon: epsilon)
    }
}
