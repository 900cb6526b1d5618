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
    let conv1BF16, conv2BF16: BF16Weights?  // ComputePrecision.bf16: columns in (kernel, in) order for conv1dBF16
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
        // bf16 convolutions read time-major bf16 rows in place, which needs even widths (Whisper's are).
        let convolutionsInBF16 = precision == .bf16 && m % 2 == 0 && d % 2 == 0
        conv1BF16 = convolutionsInBF16 ? BF16Weights(conv1d: conv1, outChannels: d, inChannels: m, kernel: 3) : nil
        conv2BF16 = convolutionsInBF16 ? BF16Weights(conv1d: conv2, outChannels: d, inChannels: d, kernel: 3) : nil
    }

    /// Encoder positions produced for `frames` mel frames: conv2 has stride 2, padding 1, kernel 3.
    public func positions(forFrames frames: Int) -> Int { (frames - 1) / 2 + 1 }

    /// Scratch one pass over clips of these frame counts needs (see `ScratchPlan`).
    public func scratchFloats(frames: [Int], threads: Int = 1) -> Int { ScratchPlan(self, frames: frames, threads: threads).floats }

    /// Encoder states of several clips packed along positions: (Σ P_i, D). `threads` is
    /// how many threads the pass may use (see Parallel.swift); results do not depend on it.
    ///
    /// Each clip runs through the encoder on its own, so a clip's states never depend on the
    /// other clips or on `threads` (fp32 included: OpenBLAS's summation order can depend on
    /// a product's row count). With at least as many clips as threads, each thread runs whole
    /// clips, with no barrier between layers; the clips left over (fewer than the threads,
    /// or a single clip) run one at a time with all threads sharing each layer.
    public func hiddenStates(_ clips: [LogMel], arena: ScratchArena, threads: Int = 1) throws -> [Float] {
        let m = config.numMelBins
        for clip in clips {
            guard clip.bins == m, clip.frames >= 1, clip.values.count == clip.bins * clip.frames else {
                throw ModelError.invalidInput("log-mel must be \(m)×T with T ≥ 1, got \(clip.bins)×\(clip.frames) with \(clip.values.count) values")
            }
            guard positions(forFrames: clip.frames) <= config.maxSourcePositions else {
                throw ModelError.invalidInput("\(clip.frames) mel frames exceed the encoder's \(2 * config.maxSourcePositions)-frame position table")
            }
        }
        guard !clips.isEmpty else { return [] }
        let threads = max(threads, 1)
        let plan = ScratchPlan(self, frames: clips.map(\.frames), threads: threads)
        arena.begin(floats: plan.floats)
        let buffers = plan.carve(arena)
        var starts: [Int] = []
        var offset = 0
        for clip in clips { starts.append(offset); offset += positions(forFrames: clip.frames) }

        let sideBySide = clips.count / threads * threads
        if sideBySide > 0 {
            let longestFirst = (0..<sideBySide).sorted { clips[$0].frames > clips[$1].frames }
            parallelUnits(sideBySide, threads: threads) { unit, worker in
                let clip = longestFirst[unit]
                encode(clips[clip], firstPosition: starts[clip], buffers: buffers, worker: worker, threads: 1)
            }
        }
        for clip in sideBySide..<clips.count {
            encode(clips[clip], firstPosition: starts[clip], buffers: buffers, worker: 0, threads: threads)
        }
        return Array(UnsafeBufferPointer(start: buffers.x, count: plan.tokens * config.dModel))
    }

    /// Runs one clip, whose positions start at `firstPosition`, through the front end and
    /// every layer on `threads` threads, with the per-worker scratch of workers
    /// `worker ..< worker + threads`.
    private func encode(_ clip: LogMel, firstPosition: Int, buffers b: Buffers, worker: Int, threads: Int) {
        let d = config.dModel, m = config.numMelBins
        let heads = config.encoderAttentionHeads, headDim = d / heads
        let t = clip.frames, length = positions(forFrames: t)
        let x = b.x + firstPosition * d

        // Front end: gelu(conv1(mel)) → gelu(conv2(·)) + positions[0..<P].
        let frontEnd = b.frontEnd + worker * b.sizes.frontEnd
        if let conv1BF16, let conv2BF16 {
            let rows = UnsafeMutableRawPointer(frontEnd).bindMemory(to: UInt16.self, capacity: 2 * b.sizes.frontEnd)
            let mel = PaddedTimeRows(rows, channels: m, frames: t, padding: 1)
            let front = PaddedTimeRows(rows + PaddedTimeRows.elements(channels: m, frames: t, padding: 1), channels: d, frames: t, padding: 1)
            timeRowsBF16(channelMajor: clip.values, into: mel, threads: threads)
            conv1dBF16(mel, stride: 1, weight: conv1BF16, bias: conv1Bias, activation: .gelu, into: front, threads: threads)
            conv1dBF16(front, stride: 2, weight: conv2BF16, bias: conv2Bias, activation: .gelu, out: x, threads: threads)
        } else {
            let columns = frontEnd, front = columns + t * max(m, d) * 3
            im2col1d(clip.values, channels: m, length: t, channelStride: t, timeStride: 1,
                     kernel: 3, stride: 1, padding: 1, outLength: t, columns: columns, threads: threads)
            linear(columns, rows: t, inFeatures: m * 3, weight: conv1, bias: conv1Bias, outFeatures: d, out: front,
                   bf16: nil, scratch: nil, threads: threads, activation: .gelu)
            im2col1d(front, channels: d, length: t, channelStride: 1, timeStride: d,
                     kernel: 3, stride: 2, padding: 1, outLength: length, columns: columns, threads: threads)
            linear(columns, rows: length, inFeatures: d * 3, weight: conv2, bias: conv2Bias, outFeatures: d, out: x,
                   bf16: nil, scratch: nil, threads: threads, activation: .gelu)
        }
        addInPlace(x, positions, count: length * d, threads: threads)

        let s = b.sizes
        let normed = b.normed + worker * s.normed, context = b.context + worker * s.context, qkv = b.qkv + worker * s.qkv
        let hidden = b.hidden + worker * s.hidden, scores = b.scores + worker * s.scores
        let bf16 = precision == .bf16
        let rows = bf16 ? b.rows + worker * s.rows : nil
        let attentionScratch = bf16 ? b.attention + worker * s.attention : nil
        let feedForwardScratch = bf16 ? b.feedForward + worker * s.feedForward : nil
        let scale = 1 / Float(headDim).squareRoot()
        for layer in layers {
            // x += W_o · attention(W_qkv · LN(x))
            let selfAttention = layer.selfAttention
            if let weights = selfAttention.bf16, let rows, let attentionScratch, headDim % 2 == 0 {
                // q, k, v leave the product as bf16, the form attention's products read.
                let rounded = UnsafeMutableRawPointer(qkv).bindMemory(to: UInt16.self, capacity: 2 * s.qkv)
                linearBF16(x, rows: length, inFeatures: d, norm: selfAttention.norm, weight: weights.qkv, bias: selfAttention.qkvBias,
                           roundedOut: rounded, scratch: rows, threads: threads)
                attentionBF16(qkv: rounded, stride: 3 * d, heads: heads, headDim: headDim, starts: [0], lengths: [length], scale: scale,
                              scores: scores, scratch: attentionScratch, out: context, threads: threads)
            } else {
                linear(x, rows: length, inFeatures: d, normalizedBy: selfAttention.norm, normed: normed, weight: selfAttention.qkv,
                       bias: selfAttention.qkvBias, outFeatures: 3 * d, out: qkv, bf16: selfAttention.bf16?.qkv, scratch: rows, threads: threads)
                attention(qkv: qkv, stride: 3 * d, heads: heads, headDim: headDim, starts: [0], lengths: [length],
                          scale: scale, scores: scores, out: context, bf16: attentionScratch, threads: threads)
            }
            residualLinear(context, rows: length, inFeatures: d, weight: selfAttention.out, bias: selfAttention.outBias, outFeatures: d,
                           into: x, temporary: normed, bf16: selfAttention.bf16?.out, scratch: rows, threads: threads)
            // x += W2 · gelu(W1 · LN(x))
            residualFeedForward(x, rows: length, norm: layer.ffn.norm, weights: layer.ffn.weights, activation: .gelu, normed: normed, hidden: hidden,
                                scratch: feedForwardScratch, threads: threads)
        }
        layerNorm(x, rows: length, width: d, gamma: finalNorm, beta: finalNormBias, eps: config.layerNormEps, out: x, threads: threads)
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
