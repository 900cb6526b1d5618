// The two sublayers Whisper's encoder and decoder layers share, with CTranslate2
// `WhisperSpec` tensor names: pre-norm self-attention (`self_attention/`) and the GELU
// feed-forward (`ffn/`). The decoder's cross-attention is its own (WhisperDecoder.swift).

/// `<layer>/self_attention/`: the norm in front, q, k, v fused, the output projection.
struct WhisperSelfAttentionWeights: Sendable {
    let norm: LayerNormParameters  // layer_norm/{gamma,beta}
    let qkv, qkvBias: [Float]      // linear_0: q, k, v fused (3D, D); note: k bias is zero
    let out, outBias: [Float]      // linear_1 (D, D)
    let bf16: (qkv: BF16Weights, out: BF16Weights)?  // ComputePrecision.bf16 only

    init(_ loader: inout TensorLoader, prefix p: String, width d: Int, eps: Float, precision: ComputePrecision) throws {
        norm = LayerNormParameters(gamma: try loader.take(p + "layer_norm/gamma", [d]), beta: try loader.take(p + "layer_norm/beta", [d]), eps: eps)
        qkv = try loader.take(p + "linear_0/weight", [3 * d, d])
        qkvBias = try loader.take(p + "linear_0/bias", [3 * d])
        out = try loader.take(p + "linear_1/weight", [d, d])
        outBias = try loader.take(p + "linear_1/bias", [d])
        bf16 = precision == .bf16
            ? (BF16Weights(qkv, outFeatures: 3 * d, inFeatures: d), BF16Weights(out, outFeatures: d, inFeatures: d))
            : nil
    }
}

/// `<layer>/ffn/`: the norm in front, linear_0 (F, D), GELU, linear_1 (D, F).
struct WhisperFeedForwardWeights: Sendable {
    let norm: LayerNormParameters  // layer_norm/{gamma,beta}
    let weights: FeedForwardWeights  // linear_0 as up, linear_1 as down

    init(_ loader: inout TensorLoader, prefix p: String, width d: Int, hiddenWidth f: Int, eps: Float, precision: ComputePrecision) throws {
        norm = LayerNormParameters(gamma: try loader.take(p + "layer_norm/gamma", [d]), beta: try loader.take(p + "layer_norm/beta", [d]), eps: eps)
        let up = try loader.take(p + "linear_0/weight", [f, d]), upBias = try loader.take(p + "linear_0/bias", [f])
        let down = try loader.take(p + "linear_1/weight", [d, f]), downBias = try loader.take(p + "linear_1/bias", [d])
        weights = FeedForwardWeights(
            up: up, upBias: upBias, down: down, downBias: downBias, width: d, hiddenWidth: f,
            bf16: precision == .bf16 ? (BF16Weights(up, outFeatures: f, inFeatures: d), BF16Weights(down, outFeatures: d, inFeatures: f)) : nil)
    }
}
