/// Multi-head scaled dot-product attention over packed variable-length sequences.
///
/// Shapes: `qkv` is (T, stride) where row t holds q at columns [0, D), k at [D, 2D),
/// v at [2D, 3D) (D = heads · headDim), T = Σ lengths. Sequence s occupies rows
/// [starts[s], starts[s] + lengths[s]) and attends only to its own rows: the mask is
/// block-diagonal, so padding is never computed. `out` is (T, D); `scores` is scratch of
/// at least maxLength² floats. Softmax(q·kᵀ · scale) · v per head, two GEMMs per head.
package func attention(
    qkv: UnsafePointer<Float>, stride: Int, heads: Int, headDim: Int,
    starts: [Int], lengths: [Int], scale: Float,
    scores: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>
) {
    let width = heads * headDim
    for (start, length) in zip(starts, lengths) where length > 0 {
        for h in 0..<heads {
            let q = qkv + start * stride + h * headDim
            let k = q + width
            let v = q + 2 * width
            // scores (L, L) = scale · q (L, hd) · kᵀ (hd, L)
            gemm(.none, .transposed, m: length, n: length, k: headDim,
                 alpha: scale, a: q, lda: stride, b: k, ldb: stride, c: scores)
            softmaxRows(scores, rows: length, width: length)
            // out (L, hd) = scores (L, L) · v (L, hd)
            gemm(m: length, n: headDim, k: length, a: scores, b: v, ldb: stride,
                 c: out + start * width + h * headDim, ldc: width)
        }
    }
}
