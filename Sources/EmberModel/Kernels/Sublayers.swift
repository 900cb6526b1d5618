// The pieces of a transformer layer around its attention, in either precision: the
// normalized input of a pre-norm sublayer, the residual output projection, and the
// feed-forward block. fp32 runs them as separate passes (layerNorm, `linear`, addInPlace),
// exactly as the towers did before these helpers; bf16 fuses each into the kernel's loads
// and stores (BF16.swift), so LN(x) and the hidden activations never pass through memory
// in fp32.

/// out = act(W · LN(x) + b): a pre-norm sublayer's first linear layer. fp32 writes LN(x)
/// into `normed` (rows × inFeatures) first; bf16 normalizes straight into its rounded rows.
package func linear(
    _ x: UnsafePointer<Float>, rows: Int, inFeatures: Int, normalizedBy norm: LayerNormParameters, normed: UnsafeMutablePointer<Float>,
    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, outFeatures: Int, out: UnsafeMutablePointer<Float>,
    bf16: BF16Weights?, scratch: UnsafeMutablePointer<Float>?, threads: Int = 1, activation: LinearActivation = .none
) {
    if let bf16, let scratch {
        linearBF16(x, rows: rows, inFeatures: inFeatures, norm: norm, weight: bf16, bias: bias, out: out, scratch: scratch, threads: threads,
                   activation: activation)
    } else {
        layerNorm(x, rows: rows, width: inFeatures, gamma: norm.gamma, beta: norm.beta, eps: norm.eps, out: normed, threads: threads)
        linear(normed, rows: rows, inFeatures: inFeatures, weight: weight, bias: bias, outFeatures: outFeatures, out: out, bf16: nil,
               scratch: nil, threads: threads, activation: activation)
    }
}

/// x += W · y + b: a residual branch's output projection. fp32 computes W · y + b into
/// `temporary` (rows × outFeatures) and adds it; bf16 adds in the kernel's store.
package func residualLinear(
    _ y: UnsafePointer<Float>, rows: Int, inFeatures: Int, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, outFeatures: Int,
    into x: UnsafeMutablePointer<Float>, temporary: UnsafeMutablePointer<Float>, bf16: BF16Weights?, scratch: UnsafeMutablePointer<Float>?,
    threads: Int = 1
) {
    if let bf16, let scratch {
        linearBF16(y, rows: rows, inFeatures: inFeatures, weight: bf16, bias: bias, out: x, accumulate: true, scratch: scratch, threads: threads)
    } else {
        linear(y, rows: rows, inFeatures: inFeatures, weight: weight, bias: bias, outFeatures: outFeatures, out: temporary, threads: threads)
        addInPlace(x, temporary, count: rows * outFeatures, threads: threads)
    }
}

/// A feed-forward block's weights: up (hidden, width), down (width, hidden), names as in the checkpoint at the call site.
package struct FeedForwardWeights {
    let up: [Float], upBias: [Float], down: [Float], downBias: [Float]
    let width: Int, hiddenWidth: Int
    let bf16: (up: BF16Weights, down: BF16Weights)?

    package init(up: [Float], upBias: [Float], down: [Float], downBias: [Float], width: Int, hiddenWidth: Int,
                 bf16: (up: BF16Weights, down: BF16Weights)?) {
        (self.up, self.upBias, self.down, self.downBias, self.width, self.hiddenWidth, self.bf16) = (up, upBias, down, downBias, width, hiddenWidth, bf16)
    }
}

/// x += down · act(up · norm(x) + upBias) + downBias (no norm: x += FFN(x), as a post-norm
/// layer does before its own LN). fp32 uses `normed` (rows × width) and `hidden`
/// (rows × hiddenWidth); bf16 uses only `scratch` (`feedForwardBF16ScratchFloats`).
package func residualFeedForward(
    _ x: UnsafeMutablePointer<Float>, rows: Int, norm: LayerNormParameters?, weights w: FeedForwardWeights, activation: LinearActivation,
    normed: UnsafeMutablePointer<Float>, hidden: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>?, threads: Int = 1
) {
    if let bf16 = w.bf16, let scratch {
        feedForwardBF16(x, rows: rows, width: w.width, norm: norm, up: bf16.up, upBias: w.upBias, activation: activation, down: bf16.down,
                        downBias: w.downBias, scratch: scratch, threads: threads)
        return
    }
    var input = UnsafePointer(x)
    if let norm {
        layerNorm(x, rows: rows, width: w.width, gamma: norm.gamma, beta: norm.beta, eps: norm.eps, out: normed, threads: threads)
        input = UnsafePointer(normed)
    }
    linear(input, rows: rows, inFeatures: w.width, weight: w.up, bias: w.upBias, outFeatures: w.hiddenWidth, out: hidden, bf16: nil,
           scratch: nil, threads: threads, activation: activation)
    linear(hidden, rows: rows, inFeatures: w.hiddenWidth, weight: w.down, bias: w.downBias, outFeatures: w.width, out: normed, threads: threads)
    addInPlace(x, normed, count: rows * w.width, threads: threads)
}
