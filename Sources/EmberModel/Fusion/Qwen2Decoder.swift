// Qwen2 decoder (transformers 5.24 `Qwen2Model`, and `Qwen2VLTextModel` with multimodal
// RoPE): token embeddings, pre-norm layers of RMSNorm → grouped-query attention (q/k/v
// with biases, o without) with rotary positions → residual → RMSNorm → SwiGLU MLP →
// residual, then a final RMSNorm. One pass over whole sequences, no KV cache; causal or
// bidirectional attention (embedding checkpoints use either).
//
// Shape legend: T packed tokens of all sequences (no padding), D hidden size, F
// intermediate size, H query heads, K key/value heads, hd = D / H, Q = (H + 2K) · hd.

/// One layer's weights; names are the checkpoint's under `{prefix}layers.N.`.
struct Qwen2DecoderLayer: Sendable {
    let inputNorm: [Float]                      // input_layernorm.weight (D)
    let q, qBias, k, kBias, v, vBias: [Float]   // self_attn.{q,k,v}_proj (H·hd | K·hd, D) with biases
    let o: [Float]                              // self_attn.o_proj.weight (D, H·hd); note: no bias
    let postAttentionNorm: [Float]              // post_attention_layernorm.weight (D)
    let gate, up, down: [Float]                 // mlp.{gate,up}_proj (F, D), mlp.down_proj (D, F); no biases
    let bf16: (q: BF16Weights, k: BF16Weights, v: BF16Weights, o: BF16Weights, gate: BF16Weights, up: BF16Weights, down: BF16Weights)?

    init(_ loader: inout TensorLoader, prefix: String, index i: Int, config c: Qwen2DecoderConfig, precision: ComputePrecision) throws {
        let p = "\(prefix)layers.\(i)."
        let d = c.hiddenSize, f = c.intermediateSize, hd = c.headDim
        let qWidth = c.numAttentionHeads * hd, kvWidth = c.numKeyValueHeads * hd
        inputNorm = try loader.take(p + "input_layernorm.weight", [d])
        q = try loader.take(p + "self_attn.q_proj.weight", [qWidth, d])
        qBias = try loader.take(p + "self_attn.q_proj.bias", [qWidth])
        k = try loader.take(p + "self_attn.k_proj.weight", [kvWidth, d])
        kBias = try loader.take(p + "self_attn.k_proj.bias", [kvWidth])
        v = try loader.take(p + "self_attn.v_proj.weight", [kvWidth, d])
        vBias = try loader.take(p + "self_attn.v_proj.bias", [kvWidth])
        o = try loader.take(p + "self_attn.o_proj.weight", [d, qWidth])
        postAttentionNorm = try loader.take(p + "post_attention_layernorm.weight", [d])
        gate = try loader.take(p + "mlp.gate_proj.weight", [f, d])
        up = try loader.take(p + "mlp.up_proj.weight", [f, d])
        down = try loader.take(p + "mlp.down_proj.weight", [d, f])
        bf16 = precision == .bf16 ? Self.rounded(q, k, v, o, gate, up, down, config: c) : nil
    }

    /// The linear layers' weights rounded to bf16 (ComputePrecision.bf16).
    private static func rounded(_ q: [Float], _ k: [Float], _ v: [Float], _ o: [Float], _ gate: [Float], _ up: [Float], _ down: [Float],
                                config c: Qwen2DecoderConfig)
        -> (q: BF16Weights, k: BF16Weights, v: BF16Weights, o: BF16Weights, gate: BF16Weights, up: BF16Weights, down: BF16Weights)
    {
        let d = c.hiddenSize, f = c.intermediateSize, qWidth = c.numAttentionHeads * c.headDim, kvWidth = c.numKeyValueHeads * c.headDim
        return (BF16Weights(q, outFeatures: qWidth, inFeatures: d), BF16Weights(k, outFeatures: kvWidth, inFeatures: d),
                BF16Weights(v, outFeatures: kvWidth, inFeatures: d), BF16Weights(o, outFeatures: d, inFeatures: qWidth),
                BF16Weights(gate, outFeatures: f, inFeatures: d), BF16Weights(up, outFeatures: f, inFeatures: d),
                BF16Weights(down, outFeatures: d, inFeatures: f))
    }

    /// Random weights of the right shapes (benchmarks): values from `next(count)`.
    init(random next: (Int) -> [Float], config c: Qwen2DecoderConfig, precision: ComputePrecision) {
        let d = c.hiddenSize, f = c.intermediateSize, qWidth = c.numAttentionHeads * c.headDim, kvWidth = c.numKeyValueHeads * c.headDim
        (inputNorm, postAttentionNorm) = ([Float](repeating: 1, count: d), [Float](repeating: 1, count: d))
        (q, qBias, k, kBias, v, vBias) = (next(qWidth * d), next(qWidth), next(kvWidth * d), next(kvWidth), next(kvWidth * d), next(kvWidth))
        (o, gate, up, down) = (next(d * qWidth), next(f * d), next(f * d), next(d * f))
        bf16 = precision == .bf16 ? Self.rounded(q, k, v, o, gate, up, down, config: c) : nil
    }
}

/// The fusion transformer: embeddings of a packed batch of sequences in, final hidden states out.
public final class Qwen2Decoder: Sendable {
    /// Attention pattern over a sequence.
    public enum AttentionMask: String, Sendable, Codable {
        /// Token i attends to tokens ≤ i (Qwen2 as trained; GME).
        case causal
        /// Every token attends to every token of its sequence (SAIL's fusion).
        case bidirectional
    }

    public let config: Qwen2DecoderConfig
    /// Where the decoder's tensors sit in the checkpoint: `model.` (Qwen2ForCausalLM, and
    /// Qwen2-VL as transformers saves it), `model.language_model.` (Qwen2-VL as it runs in
    /// transformers 5), or none (a bare Qwen2Model).
    public let prefix: String
    let embedTokens: [Float]  // {prefix}embed_tokens.weight (V, D)
    let layers: [Qwen2DecoderLayer]
    let norm: [Float]         // {prefix}norm.weight (D)
    let rotary: RotaryTable
    public let precision: ComputePrecision

    public static let prefixes = ["model.language_model.", "model.", ""]

    /// Loads every tensor of `file` (a decoder-only safetensors file as the converter
    /// writes it); `lm_head.weight`, if present, is ignored (embeddings need no head).
    public init(weights file: SafeTensorsFile, config: Qwen2DecoderConfig, precision: ComputePrecision = .fp32) throws {
        try config.validate()
        self.config = config
        self.precision = precision
        guard let prefix = Self.prefixes.first(where: { file.entries[$0 + "embed_tokens.weight"] != nil }) else {
            throw ModelError.missingTensor("embed_tokens.weight (under \(Self.prefixes.map { "'\($0)'" }.joined(separator: ", ")))")
        }
        self.prefix = prefix
        var loader = TensorLoader(file)
        embedTokens = try loader.take(prefix + "embed_tokens.weight", [config.vocabSize, config.hiddenSize])
        layers = try (0..<config.numHiddenLayers).map {
            try Qwen2DecoderLayer(&loader, prefix: prefix, index: $0, config: config, precision: precision)
        }
        norm = try loader.take(prefix + "norm.weight", [config.hiddenSize])
        loader.ignore("lm_head.weight")
        try loader.finish()
        rotary = RotaryTable(headDim: config.headDim, theta: config.ropeTheta, mropeSection: config.mropeSection)
    }

    /// A decoder of `config`'s shapes with seeded random weights (uniform ±`scale`), for
    /// `ember bench fusion`: no checkpoint of a 0.5B- or 2B-class model is at hand.
    package init(randomWeights config: Qwen2DecoderConfig, seed: UInt64 = 1, scale: Float = 0.02, precision: ComputePrecision = .fp32) throws {
        try config.validate()
        self.config = config
        self.precision = precision
        prefix = "model."
        var state = seed
        func next(_ count: Int) -> [Float] {
            [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                for i in 0..<count {
                    state = state &* 6364136223846793005 &+ 1442695040888963407
                    buffer[i] = (Float(UInt32(truncatingIfNeeded: state >> 40)) / Float(1 << 24) * 2 - 1) * scale
                }
                initialized = count
            }
        }
        embedTokens = next(config.vocabSize * config.hiddenSize)
        layers = (0..<config.numHiddenLayers).map { _ in Qwen2DecoderLayer(random: next, config: config, precision: precision) }
        norm = [Float](repeating: 1, count: config.hiddenSize)
        rotary = RotaryTable(headDim: config.headDim, theta: config.ropeTheta, mropeSection: config.mropeSection)
    }

    /// Writes the embedding rows of `tokens` to `out` (count × D); ids out of the
    /// vocabulary are an error.
    public func embed(_ tokens: [Int32], into out: UnsafeMutablePointer<Float>) throws {
        let d = config.hiddenSize
        for (t, token) in tokens.enumerated() {
            guard token >= 0, Int(token) < config.vocabSize else {
                throw ModelError.invalidInput("token id \(token) is outside the vocabulary of \(config.vocabSize)")
            }
            embedTokens.withUnsafeBufferPointer { (out + t * d).update(from: $0.baseAddress! + Int(token) * d, count: d) }
        }
    }

    /// Scratch floats one pass of `tokens` packed tokens with sequences up to `longest` needs:
    /// normed (T, D), qkv (T, Q), context (T, H·hd), gate and up (T, F) each, cos and sin
    /// (T, hd/2) each, scores (longest²) per thread; in bf16 the rounded rows of the widest input.
    public func scratchFloats(tokens: Int, longest: Int, threads: Int = 1) -> Int {
        let c = config
        let q = (c.numAttentionHeads + 2 * c.numKeyValueHeads) * c.headDim
        return tokens * (c.hiddenSize + q + c.numAttentionHeads * c.headDim + 2 * c.intermediateSize + c.headDim)
            + max(threads, 1) * longest * longest
            + (precision == .bf16 ? bf16ScratchFloats(rows: tokens, inFeatures: max(c.hiddenSize, c.intermediateSize)) : 0)
    }

    /// Runs the layers over `x` (T, D) in place: packed sequences of `lengths`, each with
    /// its own `positions`, attending by `mask`; on return `x` holds the final-norm states.
    /// The arena must not be in use by the caller (this pass begins it).
    public func forward(
        _ x: UnsafeMutablePointer<Float>, lengths: [Int], positions: [RopePositions], mask: AttentionMask,
        arena: ScratchArena, threads: Int = 1
    ) throws {
        let c = config
        let d = c.hiddenSize, f = c.intermediateSize, hd = c.headDim, heads = c.numAttentionHeads, kvHeads = c.numKeyValueHeads
        let qWidth = heads * hd, kvWidth = kvHeads * hd, stride = qWidth + 2 * kvWidth
        guard lengths.count == positions.count, zip(lengths, positions).allSatisfy({ $0 == $1.count }) else {
            throw ModelError.invalidInput("positions do not match the sequence lengths \(lengths)")
        }
        let tokens = lengths.reduce(0, +)
        guard tokens > 0, let longest = lengths.max() else { return }
        var starts: [Int] = []
        var offset = 0
        for length in lengths { starts.append(offset); offset += length }

        arena.begin(floats: scratchFloats(tokens: tokens, longest: longest, threads: threads))
        let normed = arena.carve(tokens * d), qkv = arena.carve(tokens * stride), context = arena.carve(tokens * qWidth)
        let gate = arena.carve(tokens * f), up = arena.carve(tokens * f)
        let cos = arena.carve(tokens * hd / 2), sin = arena.carve(tokens * hd / 2)
        let scores = arena.carve(max(threads, 1) * longest * longest)
        let bf16 = precision == .bf16 ? arena.carve(bf16ScratchFloats(rows: tokens, inFeatures: max(d, f))) : nil
        for (start, sequence) in zip(starts, positions) {
            rotary.fill(sequence, cos: cos + start * hd / 2, sin: sin + start * hd / 2)
        }

        let scale = 1 / Float(hd).squareRoot()
        for layer in layers {
            // x += o_proj(attention(rope(q), rope(k), v)) over RMSNorm(x)
            rmsNorm(x, rows: tokens, width: d, weight: layer.inputNorm, eps: c.rmsNormEps, out: normed, threads: threads)
            linear(normed, rows: tokens, inFeatures: d, weight: layer.q, bias: layer.qBias, outFeatures: qWidth, out: qkv, ldOut: stride,
                   bf16: layer.bf16?.q, scratch: bf16, threads: threads)
            linear(normed, rows: tokens, inFeatures: d, weight: layer.k, bias: layer.kBias, outFeatures: kvWidth, out: qkv + qWidth, ldOut: stride,
                   bf16: layer.bf16?.k, scratch: bf16, threads: threads)
            linear(normed, rows: tokens, inFeatures: d, weight: layer.v, bias: layer.vBias, outFeatures: kvWidth, out: qkv + qWidth + kvWidth,
                   ldOut: stride, bf16: layer.bf16?.v, scratch: bf16, threads: threads)
            applyRotary(qkv, rows: tokens, stride: stride, offset: 0, heads: heads, headDim: hd, cos: cos, sin: sin, threads: threads)
            applyRotary(qkv, rows: tokens, stride: stride, offset: qWidth, heads: kvHeads, headDim: hd, cos: cos, sin: sin, threads: threads)
            groupedQueryAttention(qkv: qkv, stride: stride, heads: heads, kvHeads: kvHeads, headDim: hd, starts: starts, lengths: lengths,
                                  causal: mask == .causal, scale: scale, scores: scores, out: context, threads: threads)
            linear(context, rows: tokens, inFeatures: qWidth, weight: layer.o, bias: nil, outFeatures: d, out: normed,
                   bf16: layer.bf16?.o, scratch: bf16, threads: threads)
            addInPlace(x, normed, count: tokens * d, threads: threads)
            // x += down_proj(silu(gate_proj(·)) · up_proj(·)) over RMSNorm(x)
            rmsNorm(x, rows: tokens, width: d, weight: layer.postAttentionNorm, eps: c.rmsNormEps, out: normed, threads: threads)
            linear(normed, rows: tokens, inFeatures: d, weight: layer.gate, bias: nil, outFeatures: f, out: gate,
                   bf16: layer.bf16?.gate, scratch: bf16, threads: threads)
            linear(normed, rows: tokens, inFeatures: d, weight: layer.up, bias: nil, outFeatures: f, out: up,
                   bf16: layer.bf16?.up, scratch: bf16, threads: threads)
            swiGLU(gate: gate, up: up, count: tokens * f, threads: threads)
            linear(gate, rows: tokens, inFeatures: f, weight: layer.down, bias: nil, outFeatures: d, out: normed,
                   bf16: layer.bf16?.down, scratch: bf16, threads: threads)
            addInPlace(x, normed, count: tokens * d, threads: threads)
        }
        rmsNorm(x, rows: tokens, width: d, weight: norm, eps: c.rmsNormEps, out: x, threads: threads)
    }
}

/// The decoder's configuration in the checkpoint's `config.json` names (Qwen2's, or
/// Qwen2-VL's `text_config`; the converter flattens `rope_parameters` into `rope_theta`
/// and `mrope_section`).
public struct Qwen2DecoderConfig: Codable, Sendable, Equatable {
    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int
    public var rmsNormEps: Float
    public var ropeTheta: Float
    /// Multimodal RoPE's [temporal, height, width] split of the hd/2 frequencies (Qwen2-VL:
    /// [16, 24, 24]); nil for plain 1-D RoPE.
    public var mropeSection: [Int]?

    public var headDim: Int { hiddenSize / numAttentionHeads }

    public init(vocabSize: Int, hiddenSize: Int, intermediateSize: Int, numHiddenLayers: Int, numAttentionHeads: Int,
                numKeyValueHeads: Int, rmsNormEps: Float = 1e-6, ropeTheta: Float = 1_000_000, mropeSection: [Int]? = nil) {
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.numKeyValueHeads = numKeyValueHeads
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta
        self.mropeSection = mropeSection
    }

    func validate() throws {
        for (key, value) in [("vocab_size", vocabSize), ("hidden_size", hiddenSize), ("intermediate_size", intermediateSize),
                             ("num_hidden_layers", numHiddenLayers), ("num_attention_heads", numAttentionHeads),
                             ("num_key_value_heads", numKeyValueHeads)] where value <= 0 {
            throw ModelError.invalidConfig(key: key, reason: "must be positive, got \(value)")
        }
        guard hiddenSize % numAttentionHeads == 0, headDim % 2 == 0 else {
            throw ModelError.invalidConfig(key: "num_attention_heads", reason: "\(numAttentionHeads) heads do not split hidden_size \(hiddenSize) into even head dims")
        }
        guard numAttentionHeads % numKeyValueHeads == 0 else {
            throw ModelError.invalidConfig(key: "num_key_value_heads", reason: "\(numKeyValueHeads) does not divide num_attention_heads \(numAttentionHeads)")
        }
        guard rmsNormEps > 0, ropeTheta > 0 else {
            throw ModelError.invalidConfig(key: rmsNormEps > 0 ? "rope_theta" : "rms_norm_eps", reason: "must be positive")
        }
        if let mropeSection, mropeSection.reduce(0, +) != headDim / 2 || mropeSection.contains(where: { $0 < 0 }) {
            throw ModelError.invalidConfig(key: "mrope_section", reason: "\(mropeSection) must sum to head_dim / 2 = \(headDim / 2)")
        }
    }
}
