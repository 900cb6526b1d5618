import CEmberBF16

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
///
/// With `bf16` scratch (`attentionBF16ScratchFloats` per worker) both products run in bf16
/// with fp32 sums (ComputePrecision.bf16): q, k, v and the softmax weights are rounded to
/// bf16; scores and softmax stay fp32.
package func attention(
    qkv: UnsafePointer<Float>, stride: Int, heads: Int, headDim: Int,
    starts: [Int], lengths: [Int], scale: Float,
    scores: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>,
    bf16: UnsafeMutablePointer<Float>? = nil, threads: Int = 1
) {
    let width = heads * headDim
    let maxLength = lengths.max() ?? 0
    forEachHead(lengths: lengths, heads: heads, threads: threads) { s, h, worker in
        let start = starts[s], length = lengths[s]
        let block = scores + worker * maxLength * maxLength
        let q = qkv + start * stride + h * headDim
        let k = q + width
        let v = q + 2 * width
        if let bf16 {
            attentionHeadBF16(q: q, k: k, v: v, stride: stride, length: length, headDim: headDim, scale: scale, scores: block,
                              scratch: bf16 + worker * attentionBF16ScratchFloats(maxLength: maxLength, headDim: headDim),
                              out: out + start * width + h * headDim, ldOut: width)
            return
        }
        // scores (L, L) = scale · q (L, hd) · kᵀ (hd, L)
        gemm(.none, .transposed, m: length, n: length, k: headDim,
             alpha: scale, a: q, lda: stride, b: k, ldb: stride, c: block)
        softmaxRows(block, rows: length, width: length)
        // out (L, hd) = scores (L, L) · v (L, hd)
        gemm(m: length, n: headDim, k: length, a: block, b: v, ldb: stride,
             c: out + start * width + h * headDim, ldc: width)
    }
}

/// Calls `body(sequence, head, worker)` for every (sequence, head) pair of the non-empty
/// sequences, longest first, as independent units shared among `threads` workers.
private func forEachHead(lengths: [Int], heads: Int, threads: Int, _ body: (_ sequence: Int, _ head: Int, _ worker: Int) -> Void) {
    let sequences = lengths.indices.filter { lengths[$0] > 0 }.sorted { lengths[$0] > lengths[$1] }
    parallelUnits(sequences.count * heads, threads: threads) { unit, worker in body(sequences[unit / heads], unit % heads, worker) }
}

/// Floats of bf16 scratch one attention worker needs for sequences up to `maxLength`.
package func attentionBF16ScratchFloats(maxLength: Int, headDim: Int) -> Int {
    let l = Int32(maxLength), hd = Int32(headDim)
    let elements = ember_bf16_packed_count(l, hd) + ember_bf16_packed_count(hd, l) + ember_bf16_rows_count(l, hd) + ember_bf16_rows_count(l, l)
    return (elements + 1) / 2 + maxLength + 16
}

/// One worker's bf16 scratch laid out for a head of `length` positions: the softmax row
/// sums, k and v packed, q's rounded rows, the softmax weights.
private struct HeadScratchBF16 {
    let sums: UnsafeMutablePointer<Float>
    let keys, values, queries, weights: UnsafeMutablePointer<UInt16>

    init(_ scratch: UnsafeMutablePointer<Float>, length: Int, headDim: Int) {
        let l = Int32(length), hd = Int32(headDim)
        let total = attentionBF16ScratchFloats(maxLength: length, headDim: headDim)
        sums = scratch
        keys = UnsafeMutableRawPointer(scratch + length).bindMemory(to: UInt16.self, capacity: 2 * (total - length))
        values = keys + ember_bf16_packed_count(l, hd)
        queries = values + ember_bf16_packed_count(hd, l)
        weights = queries + ember_bf16_rows_count(l, hd)
    }
}

/// Query rows per block in `attentionHeadBF16`: a block's scores (64 × L fp32) and weights
/// stay in L2 between the two products instead of an L × L matrix passing through memory.
private let queryBlock = 64

/// One head in bf16: per block of query rows, scores = bf16(q) · bf16(k)ᵀ (fp32 sums), then
/// in one pass e = exp(scale · scores − row max) rounded to bf16 with fp32 row sums, then
/// out = (e · bf16(v)) / sum. k is packed as the kernel's weight matrix as is, v through a
/// transposed (strided) view, both once per head. Each output row depends only on its own
/// query row, so blocks and worker splits do not change values.
private func attentionHeadBF16(
    q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, stride: Int, length: Int, headDim: Int,
    scale: Float, scores: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>, ldOut: Int
) {
    let l = Int32(length), hd = Int32(headDim)
    let b = HeadScratchBF16(scratch, length: length, headDim: headDim)
    ember_bf16_pack_strided(k, l, hd, stride, 1, b.keys)
    ember_bf16_pack_strided(v, hd, l, 1, stride, b.values)
    ember_bf16_convert(q, l, hd, Int32(stride), b.queries)
    headBF16(queries: b.queries, queryStride: ember_bf16_rows_count(1, hd), keys: b.keys, values: b.values, length: length, headDim: headDim,
             scale: scale, scores: scores, weights: b.weights, sums: b.sums, out: out, ldOut: ldOut)
}

/// Per block of query rows: scores = q · kᵀ, the softmax weights rounded to bf16 with
/// their fp32 sums, then out = (weights · v) / sum, the division in the product's store.
private func headBF16(
    queries: UnsafePointer<UInt16>, queryStride: Int, keys: UnsafePointer<UInt16>, values: UnsafePointer<UInt16>, length: Int, headDim: Int,
    scale: Float, scores: UnsafeMutablePointer<Float>, weights: UnsafeMutablePointer<UInt16>, sums: UnsafeMutablePointer<Float>,
    out: UnsafeMutablePointer<Float>, ldOut: Int
) {
    let l = Int32(length), hd = Int32(headDim)
    for first in Swift.stride(from: 0, to: length, by: queryBlock) {
        let rows = min(queryBlock, length - first), r = Int32(rows)
        ember_bf16_gemm_row_blocks(queries + first * queryStride, queryStride, r, hd, keys, l, scores, l, nil)
        ember_bf16_softmax_convert(scores, r, l, l, scale, weights, sums)
        // 1 / sum per row, then the store multiplies by it: the same fp32 product as scaling after.
        for row in 0..<rows { sums[row] = 1 / sums[row] }
        ember_bf16_gemm_row_blocks(weights, ember_bf16_rows_count(1, l), r, l, values, hd, out + first * ldOut, Int32(ldOut), sums)
    }
}

/// `attention` in bf16 on q, k, v already rounded to bf16: `qkv` rows of `stride` UInt16 as
/// a linear layer's to-bf16 store writes them (`linearBF16(roundedOut:)`). q rows are read in
/// place, k and v packed from their bf16 rows per head; the values equal `attention(qkv:bf16:)`
/// on the fp32 q, k, v these were rounded from (the same roundings, the same products).
/// `scratch` holds `attentionBF16ScratchFloats` per worker; headDim must be even.
package func attentionBF16(
    qkv: UnsafePointer<UInt16>, stride: Int, heads: Int, headDim: Int, starts: [Int], lengths: [Int], scale: Float,
    scores: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>, threads: Int = 1
) {
    precondition(headDim % 2 == 0, "bf16 q rows read in place need an even head size, got \(headDim)")
    let width = heads * headDim
    let maxLength = lengths.max() ?? 0
    forEachHead(lengths: lengths, heads: heads, threads: threads) { s, h, worker in
        let length = lengths[s], l = Int32(length), hd = Int32(headDim)
        let q = qkv + starts[s] * stride + h * headDim, k = q + width, v = q + 2 * width
        let b = HeadScratchBF16(scratch + worker * attentionBF16ScratchFloats(maxLength: maxLength, headDim: headDim), length: length, headDim: headDim)
        ember_bf16_pack_bf16_rows(k, l, hd, stride, b.keys)
        ember_bf16_pack_bf16_columns(v, hd, l, stride, b.values)
        headBF16(queries: q, queryStride: stride, keys: b.keys, values: b.values, length: length, headDim: headDim, scale: scale,
                 scores: scores + worker * maxLength * maxLength, weights: b.weights, sums: b.sums, out: out + starts[s] * width + h * headDim,
                 ldOut: width)
    }
}
