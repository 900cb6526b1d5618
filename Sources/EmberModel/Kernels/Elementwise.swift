import Foundation

// Shape legend: R rows (tokens, positions or images), W width (channels), all row-major.
// `threads`: see Parallel.swift (rows or elements in contiguous chunks; results do not
// depend on it).

/// Layer normalization over the last axis: `out[r] = (x[r] - mean) / sqrt(var + eps) * gamma + beta`.
/// x, out: (R, W); gamma, beta: (W). `out` may equal `x`.
package func layerNorm(
    _ x: UnsafePointer<Float>, rows: Int, width: Int,
    gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, eps: Float,
    out: UnsafeMutablePointer<Float>, threads: Int = 1
) {
    parallelChunks(rows, threads: threads, grain: 32) { rows in
        for r in rows { layerNormRow(x + r * width, width: width, gamma: gamma, beta: beta, eps: eps, out: out + r * width) }
    }
}

@inline(__always)
private func layerNormRow(
    _ row: UnsafePointer<Float>, width: Int, gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, eps: Float,
    out o: UnsafeMutablePointer<Float>
) {
    var mean: Float = 0
    for i in 0..<width { mean += row[i] }
    mean /= Float(width)
    var variance: Float = 0
    for i in 0..<width {
        let d = row[i] - mean
        variance += d * d
    }
    variance /= Float(width)
    let inv = 1 / (variance + eps).squareRoot()
    for i in 0..<width { o[i] = (row[i] - mean) * inv * gamma[i] + beta[i] }
}

/// `x += y`, elementwise over `count` values.
package func addInPlace(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, count: Int, threads: Int = 1) {
    parallelChunks(count, threads: threads, grain: 1 << 14) { range in
        for i in range { x[i] += y[i] }
    }
}

/// GELU in its exact form, `x/2 · (1 + erf(x/√2))`, in place (BERT "gelu", Whisper).
/// Vectorized erf (see VectorMath.swift); `geluErfReference` in the tests uses libm.
package func geluErf(_ x: UnsafeMutablePointer<Float>, count: Int, threads: Int = 1) {
    // Chunks of whole 8-lane vectors, so the lanes are the same as in one pass.
    parallelChunks((count + 7) / 8, threads: threads, grain: 1 << 11) { vectors in
        let first = vectors.lowerBound * 8
        mapLanes(x + first, count: min(vectors.upperBound * 8, count) - first) { v in 0.5 * v * (1 + erf(v * 0.70710678118654752)) }
    }
}

/// `min(max(x, 0), 6)` in place (EfficientNet-Lite).
package func relu6(_ x: UnsafeMutablePointer<Float>, count: Int, threads: Int = 1) {
    parallelChunks(count, threads: threads, grain: 1 << 14) { range in
        for i in range { x[i] = min(max(x[i], 0), 6) }
    }
}

/// Softmax over each row of x (R, W), in place, max-subtracted for stability
/// (vectorized exp; −∞ entries become 0).
package func softmaxRows(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int) {
    for r in 0..<rows {
        let row = x + r * width
        let peak = maximum(row, count: width)
        mapLanes(row, count: width) { v in exp(v - peak) }
        let inv = 1 / sum(row, count: width)
        for i in 0..<width { row[i] *= inv }
    }
}

/// Mean of rows `x` (R, W) into `out` (W).
package func meanRows(_ x: UnsafePointer<Float>, rows: Int, width: Int, out: UnsafeMutablePointer<Float>) {
    for i in 0..<width { out[i] = 0 }
    for r in 0..<rows {
        let row = x + r * width
        for i in 0..<width { out[i] += row[i] }
    }
    let scale = 1 / Float(max(rows, 1))
    for i in 0..<width { out[i] *= scale }
}

/// Scales `x` to unit L2 norm in place; a zero vector stays zero.
package func l2Normalize(_ x: inout [Float]) {
    var sum: Double = 0
    for v in x { sum += Double(v) * Double(v) }
    guard sum > 0 else { return }
    let inv = Float(1 / sum.squareRoot())
    for i in x.indices { x[i] *= inv }
}

/// Linear layer: `out = x · weightᵀ + bias`. x: (R, in), weight: (out, in) as stored by
/// PyTorch, bias: (out), out: (R, out) with row stride `ldOut` (default `outFeatures`).
package func linear(
    _ x: UnsafePointer<Float>, rows: Int, inFeatures: Int,
    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, outFeatures: Int,
    out: UnsafeMutablePointer<Float>, ldOut: Int? = nil, threads: Int = 1
) {
    let ld = ldOut ?? outFeatures
    gemm(.none, .transposed, m: rows, n: outFeatures, k: inFeatures, a: x, b: weight, c: out, ldc: ld, threads: threads)
    if let bias {
        parallelChunks(rows, threads: threads, grain: 32) { rows in
            for r in rows {
                let row = out + r * ld
                for i in 0..<outFeatures { row[i] += bias[i] }
            }
        }
    }
}
