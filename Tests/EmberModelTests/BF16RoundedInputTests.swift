import CEmberBF16
import Testing
@testable import EmberModel

/// bf16 products whose inputs arrive already rounded (attention's q, k, v as the qkv
/// layer's to-bf16 store writes them): the same bits as rounding and packing the fp32 values.
@Suite("bf16 products on bf16 inputs", .enabled(if: ComputePrecision.bf16Available, "needs AVX512-BF16"))
struct BF16RoundedInputTests {
    private func bits(_ values: [Float]) -> [UInt16] { values.map { UInt16(bf16Rounded($0).bitPattern >> 16) } }

    @Test("packing bf16 rows, or their transpose, gives the panels of packing the fp32 values",
          arguments: [(1, 1), (31, 3), (33, 64), (70, 129), (64, 500), (40, 7)])
    func packing(shape: (Int, Int)) {
        let (n, k) = shape, ld = k + 5
        // Rows of ld elements with junk past k (the next head's values in a qkv row).
        let values = pseudoRandom(n * ld, seed: 61), rounded = bits(values)
        let exact = BF16Weights(values.map(bf16Rounded), outFeatures: n, inFeatures: k, rowStride: ld, columnStride: 1)
        var packed = [UInt16](repeating: 0xffff, count: exact.packedCount)
        ember_bf16_pack_bf16_rows(rounded, Int32(n), Int32(k), ld, &packed)
        #expect(packed == Array(UnsafeBufferPointer(start: exact.packed, count: exact.packedCount)), "rows \(shape)")
        // The transpose: k rows of ldT elements hold the matrix's columns (attention's v, one key per row).
        let ldT = n + 3
        let columns = pseudoRandom(k * ldT, seed: 62)
        let exactTransposed = BF16Weights(columns.map(bf16Rounded), outFeatures: n, inFeatures: k, rowStride: 1, columnStride: ldT)
        var packedTransposed = [UInt16](repeating: 0xffff, count: exactTransposed.packedCount)
        ember_bf16_pack_bf16_columns(bits(columns), Int32(n), Int32(k), ldT, &packedTransposed)
        #expect(packedTransposed == Array(UnsafeBufferPointer(start: exactTransposed.packed, count: exactTransposed.packedCount)), "columns \(shape)")
    }

    @Test("a linear layer's bf16 store holds its fp32 output rounded", arguments: [(7, 33, 17), (70, 384, 1152)])
    func roundedLinear(shape: (Int, Int, Int)) {
        let (rows, inFeatures, outFeatures) = shape
        let x = pseudoRandom(rows * inFeatures, seed: 63), weight = pseudoRandom(outFeatures * inFeatures, seed: 64), bias = pseudoRandom(outFeatures, seed: 65)
        let norm = LayerNormParameters(gamma: pseudoRandom(inFeatures, seed: 66), beta: pseudoRandom(inFeatures, seed: 67), eps: 1e-5)
        let packed = BF16Weights(weight, outFeatures: outFeatures, inFeatures: inFeatures)
        var scratch = [Float](repeating: .nan, count: bf16ScratchFloats(rows: rows, inFeatures: inFeatures))
        var fp32 = [Float](repeating: .nan, count: rows * outFeatures)
        var rounded = [UInt16](repeating: 0xffff, count: rows * outFeatures)
        linearBF16(x, rows: rows, inFeatures: inFeatures, norm: norm, weight: packed, bias: bias, out: &fp32, scratch: &scratch)
        linearBF16(x, rows: rows, inFeatures: inFeatures, norm: norm, weight: packed, bias: bias, roundedOut: &rounded, scratch: &scratch, threads: 3)
        #expect(rounded == bits(fp32), "\(shape)")
    }

    @Test("attention on bf16 q, k, v equals attention on the fp32 values they round, bit for bit; threads alike",
          arguments: [([1], 20), ([7, 40, 3], 20), ([130], 20), ([70], 64), ([200, 33], 64)])
    func attentionOnRounded(lengths: [Int], headDim: Int) {
        let heads = 3, width = heads * headDim, stride = 3 * width + 2
        let tokens = lengths.reduce(0, +), maxLength = lengths.max()!
        let qkv = pseudoRandom(tokens * stride, seed: 68), rounded = bits(qkv)
        var starts: [Int] = [], offset = 0
        for l in lengths { starts.append(offset); offset += l }
        var scores = [Float](repeating: 0, count: 3 * maxLength * maxLength)
        var scratch = [Float](repeating: .nan, count: 3 * attentionBF16ScratchFloats(maxLength: maxLength, headDim: headDim))
        var expected = [Float](repeating: .nan, count: tokens * width), one = expected, split = expected
        attention(qkv: qkv, stride: stride, heads: heads, headDim: headDim, starts: starts, lengths: lengths, scale: 0.3, scores: &scores,
                  out: &expected, bf16: &scratch)
        attentionBF16(qkv: rounded, stride: stride, heads: heads, headDim: headDim, starts: starts, lengths: lengths, scale: 0.3, scores: &scores,
                      scratch: &scratch, out: &one)
        attentionBF16(qkv: rounded, stride: stride, heads: heads, headDim: headDim, starts: starts, lengths: lengths, scale: 0.3, scores: &scores,
                      scratch: &scratch, out: &split, threads: 3)
        expectIdentical(one, expected, "attention on bf16 \(lengths)")
        expectIdentical(split, one, "attention on bf16 \(lengths), 3 threads")
    }
}
