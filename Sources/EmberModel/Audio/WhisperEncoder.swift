// Whisper audio encoder (openai/whisper `AudioEncoder`, CTranslate2 `WhisperSpec` tensor
// names): two GELU convolutions, sinusoidal positions, pre-norm transformer, final norm.
// Audio shorter than 30 s is not padded: positions are sliced to the frames present.
//
// Shape legend: M mel bins, T mel frames, P = ceil(T / 2) encoder positions, D width,
// F feed-forward width; several clips are packed along P (no padding between them).

import EmberContract

/// One pre-norm layer; names are the checkpoint's under `encoder/layer_N/`.
struct WhisperLayer: Sendable {
    let selfAttention: WhisperSelfAttentionWeights  // self_attention/
    let ffn: WhisperFeedForwardWeights              // ffn/

    init(_ loader: inout TensorLoader, index i: Int, config c: WhisperEncoderConfig, precision: ComputePrecision) throws {
        let p = "encoder/layer_\(i)/"
        selfAttention = try WhisperSelfAttentionWeights(&loader, prefix: p + "self_attention/", width: c.dModel, eps: c.layerNormEps, precision: precision)
        ffn = try WhisperFeedForwardWeights(&loader, prefix: p + "ffn/", width: c.dModel, hiddenWidth: c.encoderFfnDim, eps: c.layerNormEps,
                                            precision: precision)
    }
}

/// The audio tower.
public final class WhisperEncoder: Sendable {
    public let config: WhisperEncoderConfig
    let conv1, conv1Bias: [Float]  // encoder/conv1: (D, M, 3), stride 1, padding 1
    let conv2, conv2Bias: [Float]  // encoder/conv2: (D, D, 3), stride 2, padding 1
    let positions: [Float]         // encoder/position_encodings/encodings (maxPositions, D)
    let layers: [WhisperLayer]
    let finalNorm, finalNormBias: [Float]  // encoder/layer_norm/{gamma,beta}
    let conv1BF16, conv2BF16: BF16Weights?  // ComputePrecision.bf16: the convolutions as linear layers over im2col rows
    public let precision: ComputePrecision

    /// `precision` .bf16 (AVX512-BF16 CPUs only) runs the convolutions and linear layers
    /// in bf16 with fp32 sums; attention, norms and GELU stay fp32.
    public init(weights file: SafeTensorsFile, config: WhisperEncoderConfig, precision: ComputePrecision = .fp32) throws {
        try config.validate()
        self.config = config
        self.precision = precision
        let d = config.dModel, m = config.numMelBins
        var loader = TensorLoader(file)
        conv1 = try loader.take("encoder/conv1/weight", [d, m, 3])
        conv1Bias = try loader.take("encoder/conv1/bias", [d])
        conv2 = try loader.take("encoder/conv2/weight", [d, d, 3])
        conv2Bias = try loader.take("encoder/conv2/bias", [d])
        positions = try loader.take("encoder/position_encodings/encodings", [config.maxSourcePositions, d])
        layers = try (0..<config.encoderLayers).map { try WhisperLayer(&loader, index: $0, config: config, precision: precision) }
        finalNorm = try loader.take("encoder/layer_norm/gamma", [d])
        finalNormBias = try loader.take("encoder/layer_norm/beta", [d])
        try loader.finish()
        conv1BF16 = precision == .bf16 ? BF16Weights(conv1, outFeatures: d, inFeatures: m * 3) : nil
        conv2BF16 = precision == .bf16 ? BF16Weights(conv2, outFeatures: d, inFeatures: d * 3) : nil
    }

    /// Encoder positions produced for `frames` mel frames: conv2 has stride 2, padding 1, kernel 3.
    public func positions(forFrames frames: Int) -> Int { (frames - 1) / 2 + 1 }

    /// Scratch floats one pass over clips of these frame counts needs: conv columns and
    /// conv1 output for the longest clip; x, normed, context (P, D); qkv (P, 3D);
    /// hidden (P, F); scores (P_max²) per thread; in bf16 the rounded input rows of the widest linear layer.
    public func scratchFloats(frames: [Int], threads: Int = 1) -> Int {
        let d = config.dModel
        let positions = frames.map { self.positions(forFrames: $0) }
        let tokens = positions.reduce(0, +), longest = frames.max() ?? 0, widest = positions.max() ?? 0
        return longest * (max(config.numMelBins, d) * 3 + d) + tokens * (6 * d + config.encoderFfnDim) + max(threads, 1) * widest * widest
            + (precision == .bf16 ? bf16LinearScratchFloats(rows: max(tokens, longest), threads: threads)
                + max(threads, 1) * attentionBF16ScratchFloats(maxLength: widest, headDim: d / config.encoderAttentionHeads) : 0)
    }

    /// bf16 scratch of the linear layers: rounded input rows of the widest one (conv2's
    /// im2col rows), or the feed-forward blocks' per-worker rows if more.
    private func bf16LinearScratchFloats(rows: Int, threads: Int) -> Int {
        let d = config.dModel
        return max(bf16ScratchFloats(rows: rows, inFeatures: 3 * max(config.numMelBins, d)),
                   residualFeedForwardScratchFloats(width: d, hiddenWidth: config.encoderFfnDim, threads: threads))
    }

    /// Encoder states of several clips packed along positions: (Σ P_i, D). `threads` is
    /// how many threads the pass may use (see Parallel.swift); results do not depend on it.
    public func hiddenStates(_ clips: [LogMel], arena: ScratchArena, threads: Int = 1) throws -> [Float] {
        let d = config.dModel, f = config.encoderFfnDim, m = config.numMelBins
        let heads = config.encoderAttentionHeads, headDim = d / heads
        for clip in clips {
            guard clip.bins == m, clip.frames >= 1, clip.values.count == clip.bins * clip.frames else {
                throw ModelError.invalidInput("log-mel must be \(m)×T with T ≥ 1, got \(clip.bins)×\(clip.frames) with \(clip.values.count) values")
            }
            guard positions(forFrames: clip.frames) <= config.maxSourcePositions else {
                throw ModelError.invalidInput("\(clip.frames) mel frames exceed the encoder's \(2 * config.maxSourcePositions)-frame position table")
            }
        }
        let lengths = clips.map { positions(forFrames: $0.frames) }
        guard let maxLength = lengths.max() else { return [] }
        let tokens = lengths.reduce(0, +)
        var starts: [Int] = []
        var offset = 0
        for length in lengths { starts.append(offset); offset += length }
        let maxFrames = clips.map(\.frames).max()!

        arena.begin(floats: scratchFloats(frames: clips.map(\.frames), threads: threads))
        let columns = arena.carve(maxFrames * max(m, d) * 3), front = arena.carve(maxFrames * d)
        let x = arena.carve(tokens * d), normed = arena.carve(tokens * d), qkv = arena.carve(tokens * 3 * d)
        let context = arena.carve(tokens * d), hidden = arena.carve(tokens * f), scores = arena.carve(max(threads, 1) * maxLength * maxLength)
        let bf16 = precision == .bf16 ? arena.carve(bf16LinearScratchFloats(rows: max(tokens, maxFrames), threads: threads)) : nil
        let bf16Attention = precision == .bf16 ? arena.carve(max(threads, 1) * attentionBF16ScratchFloats(maxLength: maxLength, headDim: headDim)) : nil

        // Front end per clip: gelu(conv1(mel)) → gelu(conv2(·)) + positions[0..<P].
        for (clip, (start, length)) in zip(clips, zip(starts, lengths)) {
            let t = clip.frames
            im2col1d(clip.values, channels: m, length: t, channelStride: t, timeStride: 1,
                     kernel: 3, stride: 1, padding: 1, outLength: t, columns: columns, threads: threads)
            linear(columns, rows: t, inFeatures: m * 3, weight: conv1, bias: conv1Bias, outFeatures: d, out: front,
                   bf16: conv1BF16, scratch: bf16, threads: threads, activation: .gelu)
            im2col1d(front, channels: d, length: t, channelStride: 1, timeStride: d,
                     kernel: 3, stride: 2, padding: 1, outLength: length, columns: columns, threads: threads)
            let out = x + start * d
            linear(columns, rows: length, inFeatures: d * 3, weight: conv2, bias: conv2Bias, outFeatures: d, out: out,
                   bf16: conv2BF16, scratch: bf16, threads: threads, activation: .gelu)
            addInPlace(out, positions, count: length * d, threads: threads)
        }

        let scale = 1 / Float(headDim).squareRoot()
        for layer in layers {
            // x += W_o · attention(W_qkv · LN(x))
            let selfAttention = layer.selfAttention
            linear(x, rows: tokens, inFeatures: d, normalizedBy: selfAttention.norm, normed: normed, weight: selfAttention.qkv, bias: selfAttention.qkvBias,
                   outFeatures: 3 * d, out: qkv, bf16: selfAttention.bf16?.qkv, scratch: bf16, threads: threads)
            attention(qkv: qkv, stride: 3 * d, heads: heads, headDim: headDim, starts: starts, lengths: lengths,
                      scale: scale, scores: scores, out: context, bf16: bf16Attention, threads: threads)
            residualLinear(context, rows: tokens, inFeatures: d, weight: selfAttention.out, bias: selfAttention.outBias, outFeatures: d,
                           into: x, temporary: normed, bf16: selfAttention.bf16?.out, scratch: bf16, threads: threads)
            // x += W2 · gelu(W1 · LN(x))
            residualFeedForward(x, rows: tokens, norm: layer.ffn.norm, weights: layer.ffn.weights, activation: .gelu, normed: normed, hidden: hidden,
                                scratch: bf16, threads: threads)
        }
        layerNorm(x, rows: tokens, width: d, gamma: finalNorm, beta: finalNormBias, eps: config.layerNormEps, out: x, threads: threads)
        return Array(UnsafeBufferPointer(start: x, count: tokens * d))
    }

    /// One D-vector per clip: the mean of its encoder states (every position is a real frame).
    public func pooled(_ clips: [LogMel], arena: ScratchArena, threads: Int = 1) throws -> [[Float]] {
        let d = config.dModel
        let states = try hiddenStates(clips, arena: arena, threads: threads)
        var start = 0
        return clips.map { clip in
            let length = positions(forFrames: clip.frames)
            var out = [Float](repeating: 0, count: d)
            states.withUnsafeBufferPointer { meanRows($0.baseAddress! + start * d, rows: length, width: d, out: &out) }
            start += length
            return out
        }
    }
}

/// `towers.audio.config`, Hugging Face `WhisperConfig` names for the encoder.
public struct WhisperEncoderConfig: Codable, Sendable {
    public var numMelBins: Int
    public var dModel: Int
    public var encoderLayers: Int
    public var encoderAttentionHeads: Int
    public var encoderFfnDim: Int
    public var maxSourcePositions: Int
    public var layerNormEps: Float = 1e-5

    enum CodingKeys: String, CodingKey {
        case numMelBins, dModel, encoderLayers, encoderAttentionHeads, encoderFfnDim, maxSourcePositions
    }

    func validate() throws {
        for (key, value) in [("num_mel_bins", numMelBins), ("d_model", dModel), ("encoder_layers", encoderLayers),
                             ("encoder_attention_heads", encoderAttentionHeads), ("encoder_ffn_dim", encoderFfnDim),
                             ("max_source_positions", maxSourcePositions)] where value <= 0 {
            throw ModelError.invalidConfig(key: key, reason: "must be positive, got \(value)")
        }
        guard dModel % encoderAttentionHeads == 0 else {
            throw ModelError.invalidConfig(key: "encoder_attention_heads", reason: "\(encoderAttentionHeads) does not divide d_model \(dModel)")
        }
    }
}
