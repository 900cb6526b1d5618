/// Multi-head scaled dot-product attention over packed variable-length sequences.
///
/// Shapes: `qkv` is (T, stride) where row t holds q at columns [0, D), k at [D, 2D),
/// v at [2D, 3D) (D = heads · headDim), T = Σ lengths. Sequence s occupies rows
/// [starts[s], starts[s] + lengths[s]) and attends only to its own rows: the mask is
/// block-diagonal, so padding is never computed. `out` is (T, D); `scores` is scratch of
/// at least min(threads, heads · sequences) · maxLength² floats (one L×L block per
/// worker). Softmax(q·kᵀ · scale) · v per head, two single-threaded GEMMs per head; the
/// (sequence, head) pairs are independent units shared among `threads` workers, longest
/// sequences first.
package func attention(
    qkv: UnsafePointer<Float>, stride: Int, heads: Int, headDim: Int,
    starts: [Int], lengths: [Int], scale: Float,
    scores: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>, threads: Int = 1
) {
    let width = heads * headDim
    let maxLength = lengths.max() ?? 0
    let sequences = lengths.indices.filter { lengths[$0] > 0 }.sorted { lengths[$0] > lengths[$1] }
    parallelUnits(sequences.count * heads, threads: threads) { unit, worker in
        let s = sequences[unit / heads], h = unit % heads
        let start = starts[s], length = lengths[s]
        let block = scores + worker * maxLength * maxLength
        let q = qkv + start * stride + h * headDim
        let k = q + width
        let v = q + 2 * width
        // scores (L, L) = scale · q (L, hd) · kᵀ (hd, L)
        gemm(.none, .transposed, m: length, n: length, k: headDim,
             alpha: scale, a: q, lda: stride, b: k, ldb: stride, c: block)
        softmaxRows(block, rows: length, width: length)
        // out (L, hd) = scores (L, L) · v (L, hd)
        gemm(m: length, n: headDim, k: length, a: block, b: v, ldb: stride,
             c: out + start * width + h * headDim, ldc: width)
    }
}
