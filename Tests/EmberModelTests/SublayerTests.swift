import Foundation
import Testing

@testable import EmberModel

/// The fused sublayers of Sublayers.swift: bf16 against a naive reference built from the
/// same bf16 roundings, fp32 against the separate passes the towers ran before.
@Suite("Fused sublayers")
struct SublayerTests {
    /// Layer norm in Double, the reference for both precisions.
    private func normalized(_ x: [Float], rows: Int, width: Int, gamma: [Float], beta: [Float], eps: Float) -> [Float] {
        var out = [Float](repeating: 0, count: x.count)
        for r in 0..<rows {
            let row = x[(r * width)..<((r + 1) * width)].map(Double.init)
            let mean = row.reduce(0, +) / Double(width)
            let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(width)
            for i in 0..<width { out[r * width + i] = Float((row[i] - mean) / (variance + Double(eps)).squareRoot() * Double(gamma[i]) + Double(beta[i])) }
        }
        return out
    }

    /// out[r, o] = bias[o] + Σ bf16(x[r, i]) · bf16(w[o, i]) in Double.
    private func bf16Product(_ x: [Float], rows: Int, inFeatures: Int, weight: [Float], bias: [Float], outFeatures: Int) -> [Double] {
        var out = [Double](repeating: 0, count: rows * outFeatures)
        for r in 0..<rows { for o in 0..<outFeatures {
            out[r * outFeatures + o] = (0..<inFeatures).reduce(Double(bias[o])) {
                $0 + Double(bf16Rounded(x[r * inFeatures + $1])) * Double(bf16Rounded(weight[o * inFeatures + $1]))
            }
        }}
        return out
    }

    @Test("bf16 pre-norm linear and residual projection match the naive product of the rounded LN(x); threads alike",
          .enabled(if: ComputePrecision.bf16Available, "needs AVX512-BF16"), arguments: [(1, 1, 3), (7, 33, 17), (70, 384, 40)])
    func preNormAndResidualBF16(shape: (Int, Int, Int)) {
        let (rows, width, outFeatures) = shape
        let x = pseudoRandom(rows * width, seed: 11).map { $0 * 3 + 0.5 }
        let gamma = pseudoRandom(width, seed: 12).map { 1 + $0 / 4 }, beta = pseudoRandom(width, seed: 13)
        let weight = pseudoRandom(outFeatures * width, seed: 14), bias = pseudoRandom(outFeatures, seed: 15)
        let packed = BF16Weights(weight, outFeatures: outFeatures, inFeatures: width)
        let norm = LayerNormParameters(gamma: gamma, beta: beta, eps: 1e-5)
        var scratch = [Float](repeating: .nan, count: bf16ScratchFloats(rows: rows, inFeatures: width))
        var one = [Float](repeating: .nan, count: rows * outFeatures), split = one
        linearBF16(x, rows: rows, inFeatures: width, norm: norm, weight: packed, bias: bias, out: &one, scratch: &scratch)
        linearBF16(x, rows: rows, inFeatures: width, norm: norm, weight: packed, bias: bias, out: &split, scratch: &scratch, threads: 3)
        expectIdentical(split, one, "pre-norm bf16 \(shape), 3 threads")
        // The kernel rounds its fp32 LN to bf16; the Double LN rounds the same way but for
        // values within an fp32 ulp of a rounding boundary, so compare with a bf16-sized tolerance.
        let ln = normalized(x, rows: rows, width: width, gamma: gamma, beta: beta, eps: 1e-5)
        let expected = bf16Product(ln, rows: rows, inFeatures: width, weight: weight, bias: bias, outFeatures: outFeatures).map(Float.init)
        expectClose(one, expected, tolerance: 0.01 * Float(width).squareRoot(), minCosine: 0.99999, "pre-norm bf16 \(shape)")

        // Residual: out += W · x + b, on top of what out holds.
        let y = pseudoRandom(rows * width, seed: 16)
        let start = pseudoRandom(rows * outFeatures, seed: 17)
        var accumulated = start, accumulatedSplit = start
        linearBF16(y, rows: rows, inFeatures: width, weight: packed, bias: bias, out: &accumulated, accumulate: true, scratch: &scratch)
        linearBF16(y, rows: rows, inFeatures: width, weight: packed, bias: bias, out: &accumulatedSplit, accumulate: true, scratch: &scratch, threads: 3)
        expectIdentical(accumulatedSplit, accumulated, "residual bf16 \(shape), 3 threads")
        let product = bf16Product(y, rows: rows, inFeatures: width, weight: weight, bias: bias, outFeatures: outFeatures)
        expectClose(accumulated, zip(start, product).map { Float(Double($0) + $1) }, tolerance: 1e-4 * Float(width).squareRoot(), minCosine: 0.999999,
                    "residual bf16 \(shape)")
    }

    @Test("bf16 feed-forward: x + down · bf16(gelu(up · bf16(LN(x)) + b1)) + b2 over several 64-row blocks; threads alike; without norm too",
          .enabled(if: ComputePrecision.bf16Available, "needs AVX512-BF16"), arguments: [(1, 16, 32, true), (65, 33, 64, true), (150, 64, 96, false)])
    func feedForwardBF16MatchesNaive(shape: (Int, Int, Int, Bool)) {
        let (rows, width, hidden, withNorm) = shape
        let x = pseudoRandom(rows * width, seed: 21).map { $0 * 2 }
        let gamma = pseudoRandom(width, seed: 22).map { 1 + $0 / 4 }, beta = pseudoRandom(width, seed: 23)
        let up = pseudoRandom(hidden * width, seed: 24), upBias = pseudoRandom(hidden, seed: 25)
        let down = pseudoRandom(width * hidden, seed: 26), downBias = pseudoRandom(width, seed: 27)
        let norm = withNorm ? LayerNormParameters(gamma: gamma, beta: beta, eps: 1e-5) : nil
        let weights = FeedForwardWeights(up: up, upBias: upBias, down: down, downBias: downBias, width: width, hiddenWidth: hidden,
                                         bf16: (BF16Weights(up, outFeatures: hidden, inFeatures: width), BF16Weights(down, outFeatures: width, inFeatures: hidden)))
        var scratch = [Float](repeating: .nan, count: feedForwardBF16ScratchFloats(width: width, hiddenWidth: hidden, threads: 3))
        var unusedNormed = [Float](repeating: .nan, count: rows * width), unusedHidden = [Float](repeating: .nan, count: rows * hidden)
        var one = x, split = x
        residualFeedForward(&one, rows: rows, norm: norm, weights: weights, activation: .gelu, normed: &unusedNormed, hidden: &unusedHidden,
                            scratch: &scratch)
        residualFeedForward(&split, rows: rows, norm: norm, weights: weights, activation: .gelu, normed: &unusedNormed, hidden: &unusedHidden,
                            scratch: &scratch, threads: 3)
        expectIdentical(split, one, "bf16 feed-forward \(shape), 3 threads")
        let untouched = (unusedNormed + unusedHidden).allSatisfy { $0.isNaN }
        #expect(untouched, "bf16 feed-forward leaves the fp32 buffers alone")

        let input = withNorm ? normalized(x, rows: rows, width: width, gamma: gamma, beta: beta, eps: 1e-5) : x
        let h = bf16Product(input, rows: rows, inFeatures: width, weight: up, bias: upBias, outFeatures: hidden)
            .map { Float(0.5 * $0 * (1 + Foundation.erf($0 / 2.0.squareRoot()))) }
        let y = bf16Product(h, rows: rows, inFeatures: hidden, weight: down, bias: downBias, outFeatures: width)
        let expected = zip(x, y).map { Float(Double($0) + $1) }
        expectClose(one, expected, tolerance: 0.01 * Float(hidden).squareRoot(), minCosine: 0.9999, "bf16 feed-forward \(shape)")
    }

    @Test("fp32 sublayers are bit-identical to the separate passes (layer norm, linear, GELU, add)", arguments: [true, false])
    func fp32SublayersUnchanged(withNorm: Bool) {
        let rows = 37, width = 24, hidden = 40
        let x = pseudoRandom(rows * width, seed: 31)
        let gamma = pseudoRandom(width, seed: 32), beta = pseudoRandom(width, seed: 33)
        let up = pseudoRandom(hidden * width, seed: 34), upBias = pseudoRandom(hidden, seed: 35)
        let down = pseudoRandom(width * hidden, seed: 36), downBias = pseudoRandom(width, seed: 37)
        let norm = LayerNormParameters(gamma: gamma, beta: beta, eps: 1e-5)
        let weights = FeedForwardWeights(up: up, upBias: upBias, down: down, downBias: downBias, width: width, hiddenWidth: hidden, bf16: nil)

        // The passes as the towers wrote them.
        var normed = [Float](repeating: 0, count: rows * width), h = [Float](repeating: 0, count: rows * hidden), projection = normed
        var expected = x
        if withNorm { layerNorm(x, rows: rows, width: width, gamma: gamma, beta: beta, eps: 1e-5, out: &normed) }
        linear(withNorm ? normed : x, rows: rows, inFeatures: width, weight: up, bias: upBias, outFeatures: hidden, out: &h)
        geluErf(&h, count: h.count)
        linear(h, rows: rows, inFeatures: hidden, weight: down, bias: downBias, outFeatures: width, out: &projection)
        addInPlace(&expected, projection, count: expected.count)

        var got = x, normedScratch = [Float](repeating: .nan, count: rows * width), hiddenScratch = [Float](repeating: .nan, count: rows * hidden)
        residualFeedForward(&got, rows: rows, norm: withNorm ? norm : nil, weights: weights, activation: .gelu, normed: &normedScratch,
                            hidden: &hiddenScratch, scratch: nil, threads: 2)
        expectIdentical(got, expected, "fp32 feed-forward")

        if withNorm {
            var qkv = [Float](repeating: .nan, count: rows * hidden), reference = qkv
            linear(x, rows: rows, inFeatures: width, normalizedBy: norm, normed: &normedScratch, weight: up, bias: upBias, outFeatures: hidden,
                   out: &qkv, bf16: nil, scratch: nil)
            linear(normed, rows: rows, inFeatures: width, weight: up, bias: upBias, outFeatures: hidden, out: &reference)
            expectIdentical(qkv, reference, "fp32 pre-norm linear")
        }
        var residual = x, temporary = [Float](repeating: .nan, count: rows * width)
        residualLinear(h, rows: rows, inFeatures: hidden, weight: down, bias: downBias, outFeatures: width, into: &residual, temporary: &temporary,
                       bf16: nil, scratch: nil)
        var reference = x
        linear(h, rows: rows, inFeatures: hidden, weight: down, bias: downBias, outFeatures: width, out: &projection)
        addInPlace(&reference, projection, count: reference.count)
        expectIdentical(residual, reference, "fp32 residual projection")
    }
}
