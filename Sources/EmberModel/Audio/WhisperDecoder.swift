// Whisper text decoder (openai/whisper `TextDecoder`, CTranslate2 `WhisperSpec` tensor
// names), one token per step: token embedding + learned positions, pre-norm layers of
// causal self-attention (keys/values cached), cross-attention over the encoder states
// (keys/values computed once per clip), GELU feed-forward; final norm; logits against
// the token embedding (tied: CTranslate2 stores the projection once).
//
// Shape legend: D width, F feed-forward width, H heads of D/H, S encoder positions,
// T tokens so far (≤ max_target_positions), V vocabulary.

import EmberContract

/// One pre-norm decoder layer; names are the checkpoint's under `decoder/layer_N/`.
struct WhisperDecoderLayer: Sendable {
    let selfAttention: WhisperSelfAttentionWeights  // self_attention/
    let crossNorm: LayerNormParameters              // attention/layer_norm/{gamma,beta}
    let query, queryBias: [Float]                   // attention/linear_0 (D, D)
    let keyValue, keyValueBias: [Float]             // attention/linear_1: k, v fused (2D, D), applied to encoder states
    let crossOut, crossOutBias: [Float]             // attention/linear_2 (D, D)
    let ffn: WhisperFeedForwardWeights              // ffn/

    init(_ loader: inout TensorLoader, index i: Int, config c: WhisperDecoderConfig) throws {
        let p = "decoder/layer_\(i)/"
        let d = c.dModel
        selfAttention = try WhisperSelfAttentionWeights(&loader, prefix: p + "self_attention/", width: d, eps: c.layerNormEps, precision: .fp32)
        crossNorm = LayerNormParameters(gamma: try loader.take(p + "attention/layer_norm/gamma", [d]),
                                        beta: try loader.take(p + "attention/layer_norm/beta", [d]), eps: c.layerNormEps)
        query = try loader.take(p + "attention/linear_0/weight", [d, d])
        queryBias = try loader.take(p + "attention/linear_0/bias", [d])
        keyValue = try loader.take(p + "attention/linear_1/weight", [2 * d, d])
        keyValueBias = try loader.take(p + "attention/linear_1/bias", [2 * d])
        crossOut = try loader.take(p + "attention/linear_2/weight", [d, d])
        crossOutBias = try loader.take(p + "attention/linear_2/bias", [d])
        ffn = try WhisperFeedForwardWeights(&loader, prefix: p + "ffn/", width: d, hiddenWidth: c.decoderFfnDim, eps: c.layerNormEps, precision: .fp32)
    }
}

/// The speech decoder of the audio tower's checkpoint (`towers.audio.asr`).
public final class WhisperDecoder: Sendable {
    public let config: WhisperDecoderConfig
    let embeddings: [Float]  // decoder/embeddings/weight (V, D), also the output projection
    let positions: [Float]   // decoder/position_encodings/encodings (max_target_positions, D)
    let layers: [WhisperDecoderLayer]
    let finalNorm, finalNormBias: [Float]  // decoder/layer_norm/{gamma,beta}

    public init(weights file: SafeTensorsFile, config: WhisperDecoderConfig) throws {
        try config.validate()
        self.config = config
        let d = config.dModel
        var loader = TensorLoader(file)
        embeddings = try loader.take("decoder/embeddings/weight", [config.vocabSize, d])
        positions = try loader.take("decoder/position_encodings/encodings", [config.maxTargetPositions, d])
        layers = try (0..<config.decoderLayers).map { try WhisperDecoderLayer(&loader, index: $0, config: config) }
        finalNorm = try loader.take("decoder/layer_norm/gamma", [d])
        finalNormBias = try loader.take("decoder/layer_norm/beta", [d])
        try loader.finish()
    }

    /// One clip's decoding state: the cross-attention keys/values of its encoder states,
    /// the self-attention cache and the step buffers, all allocated here once; `step`
    /// allocates nothing. Not thread-safe: one per clip being decoded.
    public final class State {
        let sourceLength: Int
        public fileprivate(set) var length = 0
        let crossKeyValues: [UnsafeMutablePointer<Float>]  // per layer (S, 2D): k | v
        let keys, values: [UnsafeMutablePointer<Float>]   // per layer (max_target_positions, D)
        let x, normed, qkv, context, hidden, scores: UnsafeMutablePointer<Float>
        /// The last step's logits (V), valid after a `step(…, logits: true)`.
        public let logits: UnsafeMutablePointer<Float>
        let vocabSize: Int

        init(config c: WhisperDecoderConfig, sourceLength: Int) {
            let d = c.dModel
            self.sourceLength = sourceLength
            vocabSize = c.vocabSize
            crossKeyValues = (0..<c.decoderLayers).map { _ in .allocate(capacity: sourceLength * 2 * d) }
            keys = (0..<c.decoderLayers).map { _ in .allocate(capacity: c.maxTargetPositions * d) }
            values = (0..<c.decoderLayers).map { _ in .allocate(capacity: c.maxTargetPositions * d) }
            x = .allocate(capacity: d)
            normed = .allocate(capacity: d)
            qkv = .allocate(capacity: 3 * d)
            context = .allocate(capacity: d)
            hidden = .allocate(capacity: c.decoderFfnDim)
            scores = .allocate(capacity: max(sourceLength, c.maxTargetPositions))
            logits = .allocate(capacity: c.vocabSize)
        }

        deinit {
            for p in crossKeyValues + keys + values { p.deallocate() }
            for p in [x, normed, qkv, context, hidden, scores, logits] { p.deallocate() }
        }

        /// The last logits as an array (tests, parity).
        public var logitsArray: [Float] { Array(UnsafeBufferPointer(start: logits, count: vocabSize)) }
    }

    /// Starts decoding against `states` (S, D) encoder output: computes every layer's
    /// cross-attention keys and values once.
    public func start(encoderStates states: [Float], threads: Int = 1) throws -> State {
        let d = config.dModel
        guard states.count % d == 0, states.count > 0 else {
            throw ModelError.invalidInput("encoder states must be S×\(d) with S ≥ 1, got \(states.count) values")
        }
        let state = State(config: config, sourceLength: states.count / d)
        states.withUnsafeBufferPointer { s in
            for (layer, kv) in zip(layers, state.crossKeyValues) {
                linear(s.baseAddress!, rows: state.sourceLength, inFeatures: d, weight: layer.keyValue, bias: layer.keyValueBias,
                       outFeatures: 2 * d, out: kv, threads: threads)
            }
        }
        return state
    }

    /// Feeds `token` at the next position; with `logits` the next-token logits land in
    /// `state.logits` (skipped for prompt tokens whose prediction is not read).
    public func step(_ token: Int32, state: State, logits: Bool = true, threads: Int = 1) throws {
        let d = config.dModel, heads = config.decoderAttentionHeads, headDim = d / heads
        let t = state.length
        guard t < config.maxTargetPositions else {
            throw ModelError.invalidInput("the decoder holds \(config.maxTargetPositions) tokens")
        }
        guard token >= 0 && Int(token) < config.vocabSize else { throw ModelError.invalidInput("token \(token) is outside the vocabulary") }
        let x = state.x, normed = state.normed, context = state.context
        // x = embedding[token] + positions[t]
        for i in 0..<d { x[i] = embeddings[Int(token) * d + i] + positions[t * d + i] }
        let scale = 1 / Float(headDim).squareRoot()
        for (l, layer) in layers.enumerated() {
            // x += W_o · self_attention(W_qkv · LN(x)) over positions 0…t (causal: the cache holds only those)
            let selfAttention = layer.selfAttention
            linear(x, rows: 1, inFeatures: d, normalizedBy: selfAttention.norm, normed: normed, weight: selfAttention.qkv, bias: selfAttention.qkvBias,
                   outFeatures: 3 * d, out: state.qkv, bf16: nil, scratch: nil, threads: threads)
            (state.keys[l] + t * d).update(from: state.qkv + d, count: d)
            (state.values[l] + t * d).update(from: state.qkv + 2 * d, count: d)
            attend(query: state.qkv, keys: state.keys[l], values: state.values[l], stride: d, length: t + 1,
                   heads: heads, headDim: headDim, scale: scale, scores: state.scores, out: context)
            residualLinear(context, rows: 1, inFeatures: d, weight: selfAttention.out, bias: selfAttention.outBias, outFeatures: d, into: x,
                           temporary: normed, bf16: nil, scratch: nil, threads: threads)
            // x += W_o · cross_attention(W_q · LN(x), encoder states)
            linear(x, rows: 1, inFeatures: d, normalizedBy: layer.crossNorm, normed: normed, weight: layer.query, bias: layer.queryBias,
                   outFeatures: d, out: state.qkv, bf16: nil, scratch: nil, threads: threads)
            let kv = state.crossKeyValues[l]
            attend(query: state.qkv, keys: kv, values: kv + d, stride: 2 * d, length: state.sourceLength,
                   heads: heads, headDim: headDim, scale: scale, scores: state.scores, out: context)
            residualLinear(context, rows: 1, inFeatures: d, weight: layer.crossOut, bias: layer.crossOutBias, outFeatures: d, into: x,
                           temporary: normed, bf16: nil, scratch: nil, threads: threads)
            // x += W2 · gelu(W1 · LN(x))
            residualFeedForward(x, rows: 1, norm: layer.ffn.norm, weights: layer.ffn.weights, activation: .gelu, normed: normed, hidden: state.hidden,
                                scratch: nil, threads: threads)
        }
        state.length = t + 1
        guard logits else { return }
        // logits = LN(x) · embeddingᵀ
        layerNorm(x, rows: 1, width: d, gamma: finalNorm, beta: finalNormBias, eps: config.layerNormEps, out: normed)
        embeddings.withUnsafeBufferPointer { e in
            gemm(.none, .transposed, m: 1, n: config.vocabSize, k: d, a: normed, b: e.baseAddress!, c: state.logits, threads: threads)
        }
    }

    /// One query row against `length` key/value rows (row stride `stride`), per head:
    /// out_h = softmax(q_h · K_hᵀ · scale) · V_h. out: (D).
    private func attend(
        query: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>, stride: Int, length: Int,
        heads: Int, headDim: Int, scale: Float, scores: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>
    ) {
        for h in 0..<heads {
            let o = h * headDim
            gemm(.none, .transposed, m: 1, n: length, k: headDim, alpha: scale, a: query + o, b: keys + o, ldb: stride, c: scores)
            softmaxRows(scores, rows: 1, width: length)
            gemm(.none, .none, m: 1, n: headDim, k: length, a: scores, b: values + o, ldb: stride, c: out + o)
        }
    }
}

extension WhisperDecoder.State: @unchecked Sendable {}  // owned by one decoding call at a time

/// `towers.audio.asr.config`: Hugging Face `WhisperConfig` names for the decoder, plus
/// the package's token suppression lists (`suppress_ids`, `suppress_ids_begin`).
public struct WhisperDecoderConfig: Codable, Sendable {
    public var dModel: Int
    public var decoderLayers: Int
    public var decoderAttentionHeads: Int
    public var decoderFfnDim: Int
    public var maxTargetPositions: Int
    public var vocabSize: Int
    public var suppressTokens: [Int32]
    public var beginSuppressTokens: [Int32]
    public var layerNormEps: Float = 1e-5

    enum CodingKeys: String, CodingKey {
        case dModel, decoderLayers, decoderAttentionHeads, decoderFfnDim, maxTargetPositions, vocabSize, suppressTokens, beginSuppressTokens
    }

    func validate() throws {
        for (key, value) in [("d_model", dModel), ("decoder_layers", decoderLayers), ("decoder_attention_heads", decoderAttentionHeads),
                             ("decoder_ffn_dim", decoderFfnDim), ("max_target_positions", maxTargetPositions), ("vocab_size", vocabSize)]
        where value <= 0 {
            throw ModelError.invalidConfig(key: "towers.audio.asr.config.\(key)", reason: "must be positive, got \(value)")
        }
        guard dModel % decoderAttentionHeads == 0 else {
            throw ModelError.invalidConfig(key: "towers.audio.asr.config.decoder_attention_heads", reason: "\(decoderAttentionHeads) does not divide d_model \(dModel)")
        }
        if let bad = (suppressTokens + beginSuppressTokens).first(where: { $0 < 0 || Int($0) >= vocabSize }) {
            throw ModelError.invalidConfig(key: "towers.audio.asr.config.suppress_tokens", reason: "token \(bad) is outside the vocabulary")
        }
    }
}
