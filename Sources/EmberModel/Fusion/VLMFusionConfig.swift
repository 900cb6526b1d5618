import EmberContract

/// `fusion.vlm` of a VLM-fusion manifest (`fusion.kind` `qwen2-vl-fusion`, written by
/// `Ops/convert-qwen2vl`): the Qwen2 decoder that reads every modality's tokens, how it
/// attends and pools, and the prompt around the tokens.
public struct VLMFusionConfig: Codable, Sendable {
    public static let kind = "qwen2-vl-fusion"

    /// The decoder, in the checkpoint's config names.
    public var decoder: Qwen2DecoderConfig
    /// The decoder's safetensors file (checkpoint names under `model.`, `model.language_model.` or none).
    public var weights: String
    /// `causal` (GME and decoders trained as such) or `bidirectional` (SAIL).
    public var attention: Qwen2Decoder.AttentionMask
    /// `last_token` (GME) or `tanh_mean` (SAIL).
    public var pooling: FusionPooling
    /// Nested output sizes, largest first (e.g. 1536, 768, 128); `output.dim` is one of them.
    public var matryoshka: [Int]?
    /// Text tokens kept per item (the text is cut, the template kept).
    public var maxTextTokens: Int?
    public var template: FusionTemplate
    /// Audio is embedded in chunks of this many seconds, one token each (10).
    public var audioChunkSeconds: Double?
    /// The safetensors file of the SAIL parts (`perceiver.*`, `audio_adapter.*`), when present.
    public var fusionWeights: String?
    /// SAIL's per-frame perceiver between the vision tower and the decoder; without one the
    /// vision tower's merged tokens go to the decoder as they are (Qwen2-VL, GME).
    public var perceiver: PerceiverConfig?
    /// Maps each audio chunk's pooled audio-tower vector to one decoder token.
    public var audioAdapter: AudioAdapterConfig?

    public var textTokenLimit: Int { maxTextTokens ?? 512 }
    public var chunkSeconds: Double { audioChunkSeconds ?? 10 }
}

/// The chat-style prompt an item's tokens are placed in:
/// `<|im_start|>system\n{instruction}<|im_end|>\n<|im_start|>user\n{audio}{vision}{text}<|im_end|>\n<|im_start|>assistant\n<|endoftext|>`
/// (modalities in `fusion.order`): each audio chunk is one `audio_token`; each frame is
/// `<|vision_start|>`, its vision tokens as `<|image_pad|>`, `<|vision_end|>`.
public struct FusionTemplate: Codable, Sendable {
    /// The system prompt: the task's instruction.
    public var instruction: String
    /// The placeholder of one audio chunk (default `<|vision_pad|>`, a Qwen2-VL token no
    /// prompt uses otherwise; its embedding is replaced by the audio adapter's output).
    public var audioToken: String?

    public var audioPlaceholder: String { audioToken ?? "<|vision_pad|>" }
}

/// How the decoder's last hidden states become one vector (before the L2 and Matryoshka slice).
public enum FusionPooling: String, Codable, Sendable {
    /// The last token's state (GME: the final `<|endoftext|>`).
    case lastToken = "last_token"
    /// The mean over the sequence's tokens of tanh(state) (SAIL).
    case tanhMean = "tanh_mean"

    /// The pooled (D) vector of one sequence's states (L, D).
    func pool(_ states: UnsafePointer<Float>, length: Int, width: Int) -> [Float] {
        switch self {
        case .lastToken:
            return Array(UnsafeBufferPointer(start: states + (length - 1) * width, count: width))
        case .tanhMean:
            var rows = Array(UnsafeBufferPointer(start: states, count: length * width))
            tanhInPlace(&rows, count: rows.count)
            var mean = [Float](repeating: 0, count: width)
            meanRows(rows, rows: length, width: width, out: &mean)
            return mean
        }
    }
}

/// The first `dims` values of `pooled`, L2-normalized (a Matryoshka prefix).
func matryoshkaPrefix(_ pooled: [Float], dims: Int) -> [Float] {
    var prefix = Array(pooled.prefix(dims))
    l2Normalize(&prefix)
    return prefix
}

extension ModelManifest {
    /// `validate()` for `fusion.kind` `qwen2-vl-fusion`.
    func validateVLMFusion() throws {
        guard let vlm = fusion.vlm else { throw ModelError.invalidConfig(key: "fusion.vlm", reason: "missing") }
        try vlm.decoder.validate()
        guard let text = towers.text, text.architecture == "qwen2-bpe", text.tokenizerJson != nil else {
            throw ModelError.invalidConfig(key: "towers.text", reason: "the VLM-fusion model needs its qwen2-bpe tokenizer (tokenizer_json)")
        }
        if let vision = towers.vision {
            guard vision.architecture == "qwen2-vl-vision" else {
                throw ModelError.invalidConfig(key: "towers.vision.architecture", reason: "\(vision.architecture) is not supported with \(VLMFusionConfig.kind) (qwen2-vl-vision)")
            }
            if let problem = vision.preprocessing.problem { throw ModelError.invalidConfig(key: "towers.vision.preprocessing", reason: problem) }
            guard let config = vision.qwen2Vision else { throw ModelError.invalidConfig(key: "towers.vision.qwen2_vision", reason: "missing") }
            let side = config.patchSize * config.spatialMergeSize
            guard vision.preprocessing.size % side == 0 else {
                throw ModelError.invalidConfig(key: "towers.vision.preprocessing.size",
                                               reason: "\(vision.preprocessing.size) is not a multiple of patch_size × spatial_merge_size = \(side)")
            }
            let width = vlm.perceiver?.outputSize ?? config.hiddenSize
            guard width == vlm.decoder.hiddenSize, vlm.perceiver.map({ $0.hiddenSize == config.hiddenSize }) ?? true else {
                throw ModelError.invalidConfig(key: vlm.perceiver == nil ? "towers.vision.qwen2_vision.hidden_size" : "fusion.vlm.perceiver",
                                               reason: "vision tokens must reach the decoder's hidden_size \(vlm.decoder.hiddenSize)")
            }
        }
        try validateAudio()
        if let audio = towers.audio {
            guard let adapter = vlm.audioAdapter, vlm.fusionWeights != nil else {
                throw ModelError.invalidConfig(key: "fusion.vlm.audio_adapter", reason: "an audio tower needs the audio adapter (config and fusion_weights)")
            }
            guard adapter.inputSize == audio.config.dModel, adapter.outputSize == vlm.decoder.hiddenSize else {
                throw ModelError.invalidConfig(key: "fusion.vlm.audio_adapter",
                                               reason: "maps \(adapter.inputSize) → \(adapter.outputSize), the towers need \(audio.config.dModel) → \(vlm.decoder.hiddenSize)")
            }
        }
        if vlm.perceiver != nil && vlm.fusionWeights == nil {
            throw ModelError.invalidConfig(key: "fusion.vlm.fusion_weights", reason: "the perceiver needs its weights")
        }
        guard vlm.textTokenLimit > 0, vlm.chunkSeconds > 0 else {
            throw ModelError.invalidConfig(key: vlm.textTokenLimit > 0 ? "fusion.vlm.audio_chunk_seconds" : "fusion.vlm.max_text_tokens", reason: "must be positive")
        }
        guard Set(fusion.order).count == fusion.order.count, fusion.order.allSatisfy({ has($0) }) else {
            throw ModelError.invalidConfig(key: "fusion.order", reason: "\(fusion.order.map(\.rawValue)) must name each present tower at most once")
        }
        let hidden = vlm.decoder.hiddenSize
        let sizes = vlm.matryoshka ?? [hidden]
        guard !sizes.isEmpty, sizes.allSatisfy({ $0 > 0 && $0 <= hidden }), sizes.contains(output.dim) else {
            throw ModelError.invalidConfig(
                key: "output.dim", reason: "\(output.dim) must be one of the Matryoshka sizes \(sizes) (each at most hidden_size \(hidden))")
        }
    }

    private func has(_ modality: Modality) -> Bool {
        switch modality {
        case .text: towers.text != nil
        case .vision: towers.vision != nil
        case .audio: towers.audio != nil
        }
    }
}
