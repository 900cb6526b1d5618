import EmberContract

/// The token sequence of one item in the fusion template (`FusionTemplate`): ids with
/// placeholders where audio and vision tokens go, the rotary segments, and where each
/// modality's rows start. Missing modalities contribute no tokens at all.
struct VLMFusionSequence {
    /// Token ids; placeholder rows are overwritten by audio/vision tokens before the decoder.
    var ids: [Int32] = []
    var segments: [RopeSegment] = []
    /// First row of each audio chunk's token.
    var audioRows: [Int] = []
    /// First row of each frame's vision tokens (`tokensPerFrame` rows each).
    var frameRows: [Int] = []
    /// Text tokens kept (after the limit).
    var textTokens = 0

    mutating func append(_ tokens: [Int32]) {
        guard !tokens.isEmpty else { return }
        ids += tokens
        if case let .sequential(count)? = segments.last {
            segments[segments.count - 1] = .sequential(count: count + tokens.count)
        } else {
            segments.append(.sequential(count: tokens.count))
        }
    }
}

/// The template's fixed token ids, tokenized once at load.
struct VLMFusionPrompt: Sendable {
    let prefix: [Int32]          // <|im_start|>system\n{instruction}<|im_end|>\n<|im_start|>user\n
    let suffix: [Int32]          // <|im_end|>\n<|im_start|>assistant\n<|endoftext|>
    let visionStart, visionEnd, imagePad, audioPad: Int32
    /// Ids a text must not carry (written placeholders would misalign the modality rows).
    let reserved: Set<Int32>

    init(template: FusionTemplate, tokenizer: Qwen2Tokenizer) throws {
        func special(_ token: String) throws -> Int32 {
            guard let id = tokenizer.id(ofSpecial: token) else {
                throw ModelError.invalidConfig(key: "tokenizer_json", reason: "the tokenizer has no \(token) token the template needs")
            }
            return id
        }
        let names = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", template.audioPlaceholder]
        reserved = Set(try names.map(special))
        prefix = tokenizer.encode("<|im_start|>system\n\(template.instruction)<|im_end|>\n<|im_start|>user\n")
        suffix = tokenizer.encode("<|im_end|>\n<|im_start|>assistant\n<|endoftext|>")
        visionStart = try special("<|vision_start|>")
        visionEnd = try special("<|vision_end|>")
        imagePad = try special("<|image_pad|>")
        audioPad = try special(template.audioPlaceholder)
    }

    /// The sequence of an item with `audioChunks` audio tokens, `frames` frames of
    /// `tokensPerFrame` vision tokens (an image grid `grid` when the decoder places them by
    /// multimodal RoPE, else sequential) and `text` ids, in `order`.
    func sequence(order: [Modality], audioChunks: Int, frames: Int, tokensPerFrame: Int, grid: (height: Int, width: Int)?,
                  text: [Int32]) -> VLMFusionSequence {
        var s = VLMFusionSequence()
        s.append(prefix)
        for modality in order {
            switch modality {
            case .audio:
                for _ in 0..<audioChunks {
                    s.audioRows.append(s.ids.count)
                    s.append([audioPad])
                }
            case .vision:
                for _ in 0..<frames {
                    s.append([visionStart])
                    s.frameRows.append(s.ids.count)
                    let pads = [Int32](repeating: imagePad, count: tokensPerFrame)
                    if let grid {
                        s.ids += pads
                        s.segments.append(.image(gridHeight: grid.height, gridWidth: grid.width))
                    } else {
                        s.append(pads)
                    }
                    s.append([visionEnd])
                }
            case .text:
                s.append(text)
                s.textTokens = text.count
            }
        }
        s.append(suffix)
        return s
    }
}
