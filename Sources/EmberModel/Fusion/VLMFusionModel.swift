// VLM-fusion omni-modal embedding (SAIL-Embedding's architecture; GME-Qwen2-VL is the
// causal, last-token member of the family), reference: transformers 5.24 Qwen2VLModel for
// the vision → decoder path, Ops/reference/sail_parts.py for the SAIL parts:
//
//   audio (log-mel) ─ 10 s chunks ─ Whisper encoder, mean ─ adapter ─┐ one token per chunk
//   frames ─ Qwen2-VL vision tower (2×2 merged) ─ [perceiver per frame] ─┤ tokens per frame
//   text ─ Qwen2 tokenizer ───────────────────────────────────────────────┤ ids
//        chat template (VLMFusionPrompt): placeholders replaced by the tokens above
//   → Qwen2 decoder (causal | bidirectional; multimodal RoPE for vision grids)
//   → pooling (last token | mean of tanh) → Matryoshka prefix → L2
//
// Shape legend: T tokens of one item's sequence, D the decoder's hidden size.

import EmberContract
import Foundation

/// The whole VLM-fusion model of a model directory. Immutable after init; `embed` may run
/// concurrently with one arena per caller.
public final class VLMFusionModel: Sendable {
    public let config: VLMFusionConfig
    /// Modalities in sequence order (`fusion.order`).
    public let order: [Modality]
    public let tokenizer: Qwen2Tokenizer
    public let decoder: Qwen2Decoder
    public let vision: Qwen2VisionTransformer?
    public let perceiver: Perceiver?
    public let audio: WhisperEncoder?
    public let audioAdapter: AudioAdapter?
    let audioFrontEnd: AudioFrontEnd?
    let prompt: VLMFusionPrompt
    /// The frame side the vision tower reads (the manifest's preprocessing size).
    public let frameSize: Int?
    /// Output size: `output.dim`, one of the Matryoshka sizes.
    public let dims: Int
    /// The Matryoshka sizes, largest first.
    public let matryoshka: [Int]

    /// Loads every part the manifest names; `precision` .bf16 runs the linear layers and
    /// attention products of the decoder, vision tower and perceiver (and the Whisper
    /// encoder's) in bf16 with fp32 sums; the audio adapter, norms and pooling stay fp32.
    public init(directory: URL, manifest: ModelManifest, precision: ComputePrecision = .fp32) throws {
        guard let config = manifest.fusion.vlm, let text = manifest.towers.text, let tokenizerFile = text.tokenizerJson else {
            throw ModelError.invalidConfig(key: "fusion.vlm", reason: "missing")
        }
        func file(_ name: String) throws -> SafeTensorsFile { try SafeTensorsFile(path: directory.appendingPathComponent(name).path) }
        self.config = config
        order = manifest.fusion.order
        tokenizer = try Qwen2Tokenizer(tokenizerJSON: directory.appendingPathComponent(tokenizerFile))
        decoder = try Qwen2Decoder(weights: file(config.weights), config: config.decoder, precision: precision)
        guard tokenizer.vocabularySize <= config.decoder.vocabSize else {
            throw ModelError.invalidConfig(key: "fusion.vlm.decoder.vocab_size",
                                           reason: "\(config.decoder.vocabSize) rows, the tokenizer has \(tokenizer.vocabularySize) ids")
        }
        prompt = try VLMFusionPrompt(template: config.template, tokenizer: tokenizer)
        let fusionFile = try config.fusionWeights.map(file)
        if let tower = manifest.towers.vision, let visionConfig = tower.qwen2Vision {
            let weights = try file(tower.weights)
            let prefix = weights.entries["model.visual.patch_embed.proj.weight"] != nil ? "model.visual." : "visual."
            vision = try Qwen2VisionTransformer(weights: weights, prefix: prefix, config: visionConfig, precision: precision)
            frameSize = tower.preprocessing.size
        } else {
            vision = nil
            frameSize = nil
        }
        perceiver = try config.perceiver.map { try Perceiver(weights: fusionFile!, config: $0, precision: precision) }  // fusion_weights checked by the manifest
        if let tower = manifest.towers.audio, let adapter = config.audioAdapter {
            audio = try WhisperEncoder(weights: file(tower.weights), config: tower.config, precision: precision)
            audioAdapter = try AudioAdapter(weights: fusionFile!, config: adapter)
            audioFrontEnd = tower.preprocessing
        } else {
            audio = nil
            audioAdapter = nil
            audioFrontEnd = nil
        }
        dims = manifest.output.dim
        matryoshka = config.matryoshka ?? [config.decoder.hiddenSize]
    }

    /// Decoder tokens each frame becomes: the perceiver's queries, or the merged grid.
    public var tokensPerFrame: Int {
        if let perceiver { return perceiver.config.numQueries }
        guard let vision, let frameSize else { return 0 }
        let side = frameSize / (vision.config.patchSize * vision.config.spatialMergeSize)
        return side * side
    }

    /// The merged grid of a frame when the decoder places vision tokens by multimodal RoPE.
    var frameGrid: (height: Int, width: Int)? {
        guard perceiver == nil, decoder.config.mropeSection != nil, let vision, let frameSize else { return nil }
        let side = frameSize / (vision.config.patchSize * vision.config.spatialMergeSize)
        return (side, side)
    }

    /// Why the model cannot embed `input`, or nil (the engine's `problem(with:)` for this model).
    func problem(with input: ItemInput) -> ModelError? {
        let frames = input.frames.flatMap { $0.count > 0 ? $0 : nil }
        if input.text == nil && frames == nil && input.logMel == nil { return .noContent("no text, frames or audio the model can use") }
        if let frames {
            guard vision != nil, let frameSize else { return .invalidInput("the model has no vision tower") }
            if frames.size != frameSize { return .invalidInput("frames are 3×\(frames.size)×\(frames.size), the vision tower reads 3×\(frameSize)×\(frameSize)") }
        }
        if let mel = input.logMel {
            guard audio != nil, let frontEnd = audioFrontEnd else { return .invalidInput("the model has no audio tower") }
            if mel.bins != frontEnd.nMels || mel.frames < 1 || mel.frames > frontEnd.windowFrames || mel.values.count != mel.bins * mel.frames {
                return .invalidInput(
                    "log-mel must be \(frontEnd.nMels)×T with 1 ≤ T ≤ \(frontEnd.windowFrames), got \(mel.bins)×\(mel.frames) with \(mel.values.count) values")
            }
        }
        return nil
    }

    /// The text's ids as the template places them: at most `max_text_tokens`, and never a
    /// template token (a title that spells out `<|image_pad|>` must not misalign the rows).
    func textIDs(_ text: String?) -> [Int32] {
        guard let text else { return [] }
        return Array(tokenizer.encode(text).filter { !prompt.reserved.contains($0) }.prefix(config.textTokenLimit))
    }

    /// Embeds items that passed `problem(with:)`: each item's towers, then one decoder pass
    /// over all sequences packed (each attends only to itself), then pooling per item.
    public func embed(_ inputs: [ItemInput], arena: ScratchArena, threads: Int = 1) throws -> [(vector: [Float], modalities: ModalityCounts)] {
        let d = decoder.config.hiddenSize
        var sequences: [VLMFusionSequence] = []
        var x: [Float] = []
        var counts: [ModalityCounts] = []
        for input in inputs {
            // Audio: one token per chunk of the log-mel (Whisper states, mean, adapter).
            var audioTokens: [[Float]] = []
            if let mel = input.logMel, let audio, let audioAdapter, let audioFrontEnd {
                audioTokens = try audioAdapter.tokens(for: mel, encoder: audio, frontEnd: audioFrontEnd, seconds: config.chunkSeconds,
                                                      arena: arena, threads: threads)
            }
            // Vision: each frame through the tower (and the perceiver), one token block per frame.
            var frameTokens: [[Float]] = []
            if let frames = input.frames, frames.count > 0, let vision {
                frameTokens = try vision.encode(frames: frames, arena: arena, threads: threads)
                if let perceiver { frameTokens = try perceiver.encode(frames: frameTokens, arena: arena, threads: threads) }
            }
            let sequence = prompt.sequence(order: order, audioChunks: audioTokens.count, frames: frameTokens.count,
                                           tokensPerFrame: tokensPerFrame, grid: frameGrid, text: textIDs(input.text))
            // Embedding rows of the ids, then the placeholders replaced by the modality tokens.
            let start = x.count
            x += [Float](repeating: 0, count: sequence.ids.count * d)
            try x.withUnsafeMutableBufferPointer { rows in
                let base = rows.baseAddress! + start
                try decoder.embed(sequence.ids, into: base)
                for (row, token) in zip(sequence.audioRows, audioTokens) { (base + row * d).update(from: token, count: d) }
                for (row, tokens) in zip(sequence.frameRows, frameTokens) {
                    guard tokens.count == tokensPerFrame * d else {
                        throw ModelError.invalidInput("a frame gave \(tokens.count / d) vision tokens, the template holds \(tokensPerFrame)")
                    }
                    (base + row * d).update(from: tokens, count: tokens.count)
                }
            }
            sequences.append(sequence)
            var modalities = ModalityCounts()
            modalities.textTokens = sequence.textTokens
            modalities.visionFrames = frameTokens.count
            if let mel = input.logMel, let audioFrontEnd, !audioTokens.isEmpty { modalities.audioSeconds = audioFrontEnd.seconds(frames: mel.frames) }
            counts.append(modalities)
        }
        // The decoder over all sequences, then per item: pool, Matryoshka prefix, L2.
        let lengths = sequences.map(\.ids.count)
        try x.withUnsafeMutableBufferPointer {
            try decoder.forward($0.baseAddress!, lengths: lengths, positions: sequences.map { RopePositions(segments: $0.segments) },
                                mask: config.attention, arena: arena, threads: threads)
        }
        var start = 0
        return zip(lengths, counts).map { length, modalities in
            defer { start += length * d }
            let pooled = x.withUnsafeBufferPointer { config.pooling.pool($0.baseAddress! + start, length: length, width: d) }
            return (matryoshkaPrefix(pooled, dims: dims), modalities)
        }
    }

    /// Scratch floats for the largest item the worker sends: `frames` frames, `audioChunks`
    /// chunks, a full text (the arena grows if an item needs more).
    public func scratchFloats(frames: Int, audioChunks: Int, threads: Int = 1) -> Int {
        var floats = 0
        if let vision, let frameSize {
            let side = frameSize / vision.config.patchSize
            floats = vision.scratchFloats(grids: [Qwen2VisionGrid](repeating: Qwen2VisionGrid(t: 1, h: side, w: side), count: frames), threads: threads)
            if let perceiver {
                let merged = side * side / (vision.config.spatialMergeSize * vision.config.spatialMergeSize)
                floats = max(floats, perceiver.scratchFloats(frameTokens: [Int](repeating: merged, count: frames), threads: threads))
            }
        }
        if let audio, let audioFrontEnd {
            let chunk = min(audioFrontEnd.windowFrames, Int(config.chunkSeconds * Double(audioFrontEnd.sampleRate)) / audioFrontEnd.hopLength)
            floats = max(floats, audio.scratchFloats(frames: [Int](repeating: max(chunk, 1), count: audioChunks), threads: threads))
        }
        let tokens = prompt.prefix.count + prompt.suffix.count + config.textTokenLimit + audioChunks + frames * (tokensPerFrame + 2)
        return max(floats, decoder.scratchFloats(tokens: tokens, longest: tokens, threads: threads))
    }
}
