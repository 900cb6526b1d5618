import EmberModel
import Foundation

/// InfoNCE with in-batch negatives at every Matryoshka size.
///
/// For a batch of B pairs with head outputs Ya, Yp (B, D) and each size d: Ua, Up are the
/// first d columns, each row L2-normalized; logits S = Ua · Upᵀ / τ (B, B); the loss of
/// anchor i is −log softmax(S_i)_i over the candidates not masked out. The size's loss
/// is the mean over anchors; the total is the mean over sizes, so every prefix is trained
/// to be an embedding of its own.
///
/// Masking (a constant, no gradient): a candidate j ≠ i is left out of anchor i's
/// softmax when `excluded(i, j)` says so (the same positive item twice in the batch, or
/// the anchor's own item), or when its cosine to the anchor at the largest size reaches
/// `threshold`: the source's F1 threshold says such a pair looks like a positive, so it is
/// more likely a near-duplicate or unobserved positive than a negative.
public struct MatryoshkaInfoNCE: Sendable {
    public var sizes: [Int]
    public var temperature: Float

    public init(sizes: [Int], temperature: Float) {
        self.sizes = sizes.sorted(by: >)
        self.temperature = temperature
    }

    public struct Output: Sendable {
        public var loss: Double
        /// Per size, largest first.
        public var losses: [Double]
        public var dYa: [Float]
        public var dYp: [Float]
        /// In-batch negatives the threshold left out, of B(B−1).
        public var filtered: Int
    }

    public func callAsFunction(
        anchors ya: [Float], positives yp: [Float], rows b: Int, dim: Int,
        excluded: [Bool]? = nil, threshold: Float? = nil
    ) -> Output {
        var dYa = [Float](repeating: 0, count: b * dim)
        var dYp = [Float](repeating: 0, count: b * dim)
        var mask = excluded ?? [Bool](repeating: false, count: b * b)
        var filtered = 0
        var losses: [Double] = []
        for (index, d) in sizes.enumerated() {
            let (ua, na) = Self.prefixNormalized(ya, rows: b, dim: dim, prefix: d)
            let (up, np) = Self.prefixNormalized(yp, rows: b, dim: dim, prefix: d)
            var s = [Float](repeating: 0, count: b * b)
            ua.withUnsafeBufferPointer { a in
                up.withUnsafeBufferPointer { p in
                    s.withUnsafeMutableBufferPointer { s in
                        gemm(.none, .transposed, m: b, n: b, k: d, a: a.baseAddress!, b: p.baseAddress!, c: s.baseAddress!)
                    }
                }
            }
            if index == 0, let threshold {
                for i in 0..<b {
                    for j in 0..<b where j != i && !mask[i * b + j] && s[i * b + j] >= threshold {
                        mask[i * b + j] = true
                        filtered += 1
                    }
                }
            }
            // G = (softmax(S/τ) − I) / B, masked entries 0.
            var g = [Float](repeating: 0, count: b * b)
            var loss = 0.0
            for i in 0..<b {
                var maxLogit = -Float.infinity
                for j in 0..<b where j == i || !mask[i * b + j] { maxLogit = max(maxLogit, s[i * b + j] / temperature) }
                var sum = 0.0
                for j in 0..<b where j == i || !mask[i * b + j] { sum += Double(expf(s[i * b + j] / temperature - maxLogit)) }
                let logSum = Double(maxLogit) + log(sum)
                loss += logSum - Double(s[i * b + i] / temperature)
                for j in 0..<b where j == i || !mask[i * b + j] {
                    let p = exp(Double(s[i * b + j] / temperature) - logSum)
                    g[i * b + j] = Float((p - (i == j ? 1 : 0)) / Double(b))
                }
            }
            let scale = 1 / Float(sizes.count)
            losses.append(loss / Double(b))
            // dUa = G · Up / τ, dUp = Gᵀ · Ua / τ (each scaled by 1 / sizes).
            var dua = [Float](repeating: 0, count: b * d), dup = [Float](repeating: 0, count: b * d)
            g.withUnsafeBufferPointer { g in
                up.withUnsafeBufferPointer { p in
                    dua.withUnsafeMutableBufferPointer { out in
                        gemm(.none, .none, m: b, n: d, k: b, alpha: scale / temperature, a: g.baseAddress!, b: p.baseAddress!, c: out.baseAddress!)
                    }
                }
                ua.withUnsafeBufferPointer { a in
                    dup.withUnsafeMutableBufferPointer { out in
                        gemm(.transposed, .none, m: b, n: d, k: b, alpha: scale / temperature, a: g.baseAddress!, b: a.baseAddress!, c: out.baseAddress!)
                    }
                }
            }
            Self.normalizationBackward(dua, normalized: ua, norms: na, rows: b, prefix: d, into: &dYa, dim: dim)
            Self.normalizationBackward(dup, normalized: up, norms: np, rows: b, prefix: d, into: &dYp, dim: dim)
        }
        return Output(loss: losses.reduce(0, +) / Double(sizes.count), losses: losses, dYa: dYa, dYp: dYp, filtered: filtered)
    }

    /// The first `prefix` columns of each row, L2-normalized (rows, prefix), and the norms.
    static func prefixNormalized(_ y: [Float], rows: Int, dim: Int, prefix: Int) -> ([Float], [Float]) {
        var u = [Float](repeating: 0, count: rows * prefix)
        var norms = [Float](repeating: 0, count: rows)
        for r in 0..<rows {
            var sum: Double = 0
            for j in 0..<prefix { sum += Double(y[r * dim + j]) * Double(y[r * dim + j]) }
            let norm = Float(max(sum.squareRoot(), 1e-12))
            norms[r] = norm
            for j in 0..<prefix { u[r * prefix + j] = y[r * dim + j] / norm }
        }
        return (u, norms)
    }

    /// Through u = z / ‖z‖: dz = (du − u (u·du)) / ‖z‖, added into the prefix columns of `into`.
    static func normalizationBackward(
        _ du: [Float], normalized u: [Float], norms: [Float], rows: Int, prefix: Int, into dy: inout [Float], dim: Int
    ) {
        for r in 0..<rows {
            var dot: Float = 0
            for j in 0..<prefix { dot += u[r * prefix + j] * du[r * prefix + j] }
            for j in 0..<prefix { dy[r * dim + j] += (du[r * prefix + j] - u[r * prefix + j] * dot) / norms[r] }
        }
    }
}
