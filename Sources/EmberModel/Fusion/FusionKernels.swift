// Kernels the Qwen2 decoder needs beyond Kernels/ (RMSNorm, SwiGLU, rotary embedding,
// grouped-query attention with an optional causal mask). Kept here so the shared kernels
// stay untouched; they follow Kernels/' conventions: row-major, shapes in the doc
// comment, `threads` splits work into chunks whose results do not depend on the split.
//
// Shape legend: T tokens (packed sequences), W width, H query heads, K key/value heads,
// hd head dim.

import Foundation

/// Qwen2RMSNorm: `out[r] = x[r] / sqrt(mean(x[r]²) + eps) · weight`. x, out: (T, W);
/// weight: (W). `out` may equal `x`.
package func rmsNorm(
    _ x: UnsafePointer<Float>, rows: Int, width: Int, weight: UnsafePointer<Float>, eps: Float,
    out: UnsafeMutablePointer<Float>, threads: Int = 1
) {
    parallelChunks(rows, threads: threads, grain: 16) { rows in
        for r in rows {
            let row = x + r * width, o = out + r * width
            var squares: Float = 0
            for i in 0..<width { squares += row[i] * row[i] }
            let inverse = 1 / (squares / Float(width) + eps).squareRoot()
            for i in 0..<width { o[i] = weight[i] * (row[i] * inverse) }
        }
    }
}

/// SwiGLU in place: `gate[i] = silu(gate[i]) · up[i]` over `count` values, silu(x) = x / (1 + e^−x).
package func swiGLU(gate: UnsafeMutablePointer<Float>, up: UnsafePointer<Float>, count: Int, threads: Int = 1) {
    parallelChunks((count + 7) / 8, threads: threads, grain: 1 << 11) { vectors in
        let first = vectors.lowerBound * 8, end = min(vectors.upperBound * 8, count)
        mapLanes(gate + first, count: end - first) { v in v / (1 + exp(-v)) }
        for i in first..<end { gate[i] *= up[i] }
    }
}

/// `tanh` in place over `count` values (SAIL's pooling; libm, as torch).
package func tanhInPlace(_ x: UnsafeMutablePointer<Float>, count: Int) {
    for i in 0..<count { x[i] = Foundation.tanh(x[i]) }
}

/// Rotary embedding in the `rotate_half` layout, in place on `heads` heads of each row:
/// for each head and i < hd/2, (x_i, x_{i+hd/2}) ← (x_i·cos − x_{i+hd/2}·sin, x_{i+hd/2}·cos + x_i·sin).
/// x: (T, stride) with the heads at columns [offset, offset + heads·hd); cos, sin: (T, hd/2).
package func applyRotary(
    _ x: UnsafeMutablePointer<Float>, rows: Int, stride: Int, offset: Int, heads: Int, headDim: Int,
    cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, threads: Int = 1
) {
    let half = headDim / 2
    parallelChunks(rows, threads: threads, grain: 16) { rows in
        for t in rows {
            let c = cos + t * half, s = sin + t * half
            for h in 0..<heads {
                let v = x + t * stride + offset + h * headDim
                for i in 0..<half {
                    let a = v[i], b = v[i + half]
                    v[i] = a * c[i] - b * s[i]
                    v[i + half] = b * c[i] + a * s[i]
                }
            }
        }
    }
}

/// Grouped-query scaled dot-product attention over packed variable-length sequences.
///
/// `qkv` is (T, stride): row t holds q at columns [0, H·hd), k at [H·hd, (H+K)·hd), v at
/// [(H+K)·hd, (H+2K)·hd). Query head h reads key/value head h / (H/K) (transformers'
/// `repeat_kv`). Sequence s occupies rows [starts[s], starts[s] + lengths[s]) and attends
/// only to its own rows (so padding is never computed); with `causal` row i attends to
/// rows ≤ i. `out` is (T, H·hd); `scores` is scratch of min(threads, H · sequences) ·
/// maxLength² floats.
package func groupedQueryAttention(
    qkv: UnsafePointer<Float>, stride: Int, heads: Int, kvHeads: Int, headDim: Int,
    starts: [Int], lengths: [Int], causal: Bool, scale: Float,
    scores: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>, threads: Int = 1
) {
    let width = heads * headDim, group = heads / kvHeads
    let maxLength = lengths.max() ?? 0
    let sequences = lengths.indices.filter { lengths[$0] > 0 }.sorted { lengths[$0] > lengths[$1] }
    parallelUnits(sequences.count * heads, threads: threads) { unit, worker in
        let s = sequences[unit / heads], h = unit % heads
        let start = starts[s], length = lengths[s]
        let block = scores + worker * maxLength * maxLength
        let q = qkv + start * stride + h * headDim
        let k = qkv + start * stride + width + (h / group) * headDim
        let v = qkv + start * stride + width + kvHeads * headDim + (h / group) * headDim
        // scores (L, L) = scale · q (L, hd) · kᵀ (hd, L)
        gemm(.none, .transposed, m: length, n: length, k: headDim, alpha: scale, a: q, lda: stride, b: k, ldb: stride, c: block)
        if causal {
            for i in 0..<length {
                let row = block + i * length
                for j in (i + 1)..<max(i + 1, length) { row[j] = -.infinity }
            }
        }
        softmaxRows(block, rows: length, width: length)
        // out (L, hd) = scores (L, L) · v (L, hd)
        gemm(m: length, n: headDim, k: length, a: block, b: v, ldb: stride, c: out + start * width + h * headDim, ldc: width)
    }
}
