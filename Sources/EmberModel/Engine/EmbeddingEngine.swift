import EmberContract
import Foundation
import Logging

/// What the pipeline hands the engine for one item. Any subset of modalities may be present.
public struct ItemInput: Sendable {
    /// Title, tags, OCR and ASR text already joined by the caller.
    public var text: String?
    /// Frames as the vision tower reads them, written by EmberMedia's front end from
    /// the manifest's `VisionPreprocessing` (S = its `size`).
    public var frames: FrameBatch?
    /// `n_mels × T` log-mel of the audio window (the manifest's `AudioFrontEnd`; T at most
    /// its `windowFrames`: the window is cut where the audio is decoded, not here).
    public var logMel: LogMel?

    public init(text: String? = nil, frames: FrameBatch? = nil, logMel: LogMel? = nil) {
        self.text = text
        self.frames = frames
        self.logMel = logMel
    }
}

/// The fused embedding of one item, plus what went into it.
public struct ItemEmbedding: Sendable {
    /// L2-normalized, `output.dim` values.
    public var vector: [Float]
    /// What went in, as the output record writes it.
    public var modalities: ModalityCounts
    /// Each present tower's pooled vector before fusion weighting: text is L2-normalized
    /// (sentence-transformers style), vision is the mean over frames, audio the mean over positions.
    public var towers: [Modality: [Float]]
    /// The Matryoshka size of `vector` when the model has nested output sizes (VLM fusion), else nil.
    public var matryoshka: Int?

    public init(vector: [Float], modalities: ModalityCounts, towers: [Modality: [Float]], matryoshka: Int? = nil) {
        self.vector = vector
        self.modalities = modalities
        self.towers = towers
        self.matryoshka = matryoshka
    }

    /// The vector as little-endian bytes of `dtype` (`f32` or `f16`).
    public func bytes(_ dtype: EmbeddingDType) -> [UInt8] {
        dtype.littleEndianBytes(of: vector)
    }
}

/// How an embedding is serialized: IEEE single or half precision, little-endian; `i8`
/// and `bits` are the compact encodings of `VectorEncoding` (int8 here without its scale).
public enum EmbeddingDType: String, Sendable, Codable, CaseIterable {
    case float32 = "f32"
    case float16 = "f16"
    case int8 = "i8"
    case bits = "bits"

    /// The vector as little-endian bytes of this type.
    public func littleEndianBytes(of vector: [Float]) -> [UInt8] {
        switch self {
        case .float32: vector.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }
        case .float16: vector.flatMap { withUnsafeBytes(of: Float16($0).bitPattern.littleEndian, Array.init) }
        case .int8: VectorEncoding.int8Bytes(of: vector, scale: VectorEncoding.int8Scale(of: vector))
        case .bits: VectorEncoding.signBits(of: vector)
        }
    }

    /// Decodes little-endian bytes of this type; nil when the length does not fit.
    public func vector(fromLittleEndian bytes: [UInt8]) -> [Float]? {
        switch self {
        case .float32:
            guard bytes.count % 4 == 0 else { return nil }
            return stride(from: 0, to: bytes.count, by: 4).map { i in
                Float(bitPattern: (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[i + $1]) << (8 * $1) })
            }
        case .float16:
            guard bytes.count % 2 == 0 else { return nil }
            return stride(from: 0, to: bytes.count, by: 2).map { i in
                Float(Float16(bitPattern: UInt16(bytes[i]) | UInt16(bytes[i + 1]) << 8))
            }
        case .int8: return bytes.map { Float(Int8(bitPattern: $0)) }  // unscaled: multiply by the record's scale
        case .bits: return (0..<(bytes.count * 8)).map { bytes[$0 >> 3] & (1 << ($0 & 7)) != 0 ? 1 : -1 }
        }
    }
}

/// The CPU embedding engine: the towers of a model directory, late fusion, one call per
/// micro-batch. Weights are immutable and shared; `embed` may be called from several
/// threads. `threads` is how many threads one `embed` call may use: its kernels split
/// their work (GEMM row blocks, attention heads, depthwise channels, elementwise chunks)
/// over Dispatch worker threads, each calling OpenBLAS single-threaded. The engine leaves
/// OpenBLAS's process-wide thread count alone: the caller sets `BLASThreads.count`, which
/// should be 1 whenever `threads` > 1, and keeps concurrent callers × `threads` ≤ cores
/// (the worker: `pipeline.embed_lanes` × `model.threads`). Results do not depend on `threads`.
public final class EmbeddingEngine: Sendable {
    public let manifest: ModelManifest
    public let text: BertEncoder?
    public let tokenizer: WordPieceTokenizer?
    /// The text tower when the manifest's is `universal-sentence-encoder` (omni-base);
    /// then `text` and `tokenizer` are nil.
    public let sentenceEncoder: (encoder: UniversalSentenceEncoder, tokenizer: SentencePieceTokenizer)?
    public let vision: EfficientNetLite?
    public let audio: WhisperEncoder?
    public let fusion: LateFusion
    /// The whole model when the manifest's fusion is `qwen2-vl-fusion` (one decoder reads
    /// every modality's tokens); then the late-fusion towers above are nil.
    public let fused: VLMFusionModel?
    let arenas: ArenaPool
    /// Threads one `embed` call may use (at least 1).
    public let threads: Int
    /// Arithmetic of the text and audio linear layers (bf16 only where the CPU has AVX512-BF16).
    public let precision: ComputePrecision

    /// Text tokens per BERT pass and encoder positions per Whisper pass (two 30 s clips):
    /// larger micro-batches run in several passes, which bounds scratch memory.
    public static let textTokensPerPass = 2048
    public static let audioPositionsPerPass = 3000

    /// `omni-small@<weights hash>`, the `model` field of output records; `+bf16` appended
    /// when computed in bf16, so a consumer never mixes the two unknowingly (heads and
    /// codebooks match on the weights alone: `ModelIdentity`).
    public var modelID: String { "\(manifest.id)@\(manifest.weightsHash)" + (precision == .bf16 ? ModelIdentity.bf16Suffix : "") }

    /// Loads every tower of `modelDirectory` and sizes one scratch arena for the largest
    /// pass; each `embed` call may use `threads` threads. `precision` .bf16 runs the text
    /// and audio linear layers in bf16 (cosine ≥ 0.999 to fp32 per tower, tested); on a CPU
    /// without AVX512-BF16 it throws (`PrecisionSetting.auto` chooses for the CPU).
    public init(
        modelDirectory: URL, threads: Int = 1, precision: ComputePrecision = .fp32, logger: Logger = Logger(label: "ember.model")
    ) throws {
        let manifest = try ModelManifest.load(directory: modelDirectory)
        self.manifest = manifest
        self.threads = max(1, threads)
        if precision == .bf16 { _ = try PrecisionSetting.bf16.resolved() }  // throws without AVX512-BF16
        self.precision = precision
        if manifest.fusion.kind == VLMFusionConfig.kind {
            let model = try VLMFusionModel(directory: modelDirectory, manifest: manifest, precision: precision)
            (fused, text, tokenizer, sentenceEncoder, vision, audio) = (model, nil, nil, nil, nil, nil)
            fusion = LateFusion(order: [], widths: [:], weights: [:])
            // The worker's largest item: its keyframes plus the cover, three audio chunks.
            let scratch = model.scratchFloats(frames: 9, audioChunks: 3, threads: self.threads)
            arenas = ArenaPool(initialFloats: scratch)
            logger.info("model loaded", metadata: [
                "scratch_mb": "\(String(format: "%.1f", Double(scratch * 4) / 1_048_576))", "model": "\(manifest.id)@\(manifest.weightsHash)",
                "dim": "\(manifest.output.dim)", "fusion": "\(VLMFusionConfig.kind)", "order": "\(model.order.map(\.rawValue).joined(separator: ","))",
                "attention": "\(model.config.attention.rawValue)", "pooling": "\(model.config.pooling.rawValue)",
                "threads": "\(self.threads)", "blas_threads": "\(BLASThreads.count)", "precision": "\(self.precision.rawValue)",
            ])
            return
        }
        fused = nil
        func file(_ name: String) throws -> SafeTensorsFile {
            try SafeTensorsFile(path: modelDirectory.appendingPathComponent(name).path)
        }
        var widths: [Modality: Int] = [:]
        if let t = manifest.towers.text, let config = t.config, let wordPiece = t.tokenizer {
            text = try BertEncoder(weights: try file(t.weights), config: config, precision: self.precision)
            tokenizer = try WordPieceTokenizer(vocabularyFile: modelDirectory.appendingPathComponent(wordPiece.vocab), config: wordPiece)
            widths[.text] = config.hiddenSize
        } else {
            text = nil
            tokenizer = nil
        }
        if let t = manifest.towers.text, let config = t.useConfig, let sentencePiece = t.sentencepiece {
            let encoder = try UniversalSentenceEncoder(weights: try file(t.weights), config: config)
            let pieces = try SentencePieceTokenizer(modelFile: modelDirectory.appendingPathComponent(sentencePiece.model), maxLength: sentencePiece.maxLength)
            guard pieces.vocabularySize <= encoder.vocabularySize else {
                throw ModelError.invalidConfig(key: "towers.text.sentencepiece.model",
                                               reason: "\(pieces.vocabularySize) pieces, the word table has \(encoder.vocabularySize) rows")
            }
            sentenceEncoder = (encoder, pieces)
            widths[.text] = config.outputSize
        } else {
            sentenceEncoder = nil
        }
        if let v = manifest.towers.vision, let config = v.config {
            vision = try EfficientNetLite(weights: try file(v.weights), config: config, precision: self.precision)
            widths[.vision] = config.headChannels
        } else {
            vision = nil
        }
        if let a = manifest.towers.audio {
            audio = try WhisperEncoder(weights: try file(a.weights), config: a.config, precision: self.precision)
            widths[.audio] = a.config.dModel
        } else {
            audio = nil
        }
        fusion = LateFusion(order: manifest.fusion.order, widths: widths, weights: manifest.fusion.weights)
        // Scratch sized once for the largest pass of each tower (pages are touched only when used).
        var scratch = 0
        if let sentenceEncoder {
            scratch = sentenceEncoder.encoder.scratchFloats(tokens: Self.textTokensPerPass + sentenceEncoder.tokenizer.maxLength, sentences: Self.textTokensPerPass / 3)
        }
        if let text, let t = manifest.towers.text, let config = t.config, let wordPiece = t.tokenizer {
            let longest = min(wordPiece.maxLength, config.maxPositionEmbeddings)
            scratch = max(scratch, text.scratchFloats(tokens: Self.textTokensPerPass, maxLength: longest, threads: self.threads))
        }
        if let vision, let size = manifest.towers.vision?.preprocessing.size {
            scratch = max(scratch, vision.scratchFloats(frames: EfficientNetLite.framesPerPass, size: size, threads: self.threads))
        }
        if let audio, let window = manifest.towers.audio?.preprocessing.windowFrames {
            let clips = max(1, Self.audioPositionsPerPass / audio.positions(forFrames: window))
            scratch = max(scratch, audio.scratchFloats(frames: [Int](repeating: window, count: clips), threads: self.threads))
        }
        arenas = ArenaPool(initialFloats: scratch)
        logger.info("model loaded", metadata: [
            "scratch_mb": "\(String(format: "%.1f", Double(scratch * 4) / 1_048_576))",
            "model": "\(manifest.id)@\(manifest.weightsHash)", "dim": "\(manifest.output.dim)",
            "towers": "\(manifest.fusion.order.filter { widths[$0] != nil }.map(\.rawValue).joined(separator: ","))",
            "threads": "\(self.threads)", "blas_threads": "\(BLASThreads.count)", "precision": "\(self.precision.rawValue)",
        ])
        if self.threads > 1 && BLASThreads.count > 1 {
            logger.warning("engine threads × OpenBLAS threads oversubscribe: set BLASThreads.count = 1 when threads > 1", metadata: [
                "threads": "\(self.threads)", "blas_threads": "\(BLASThreads.count)",
            ])
        }
    }

    /// Embeds a micro-batch; throws the first item's error (see `embedEach` to keep the
    /// good items of a batch with bad ones).
    public func embed(_ inputs: [ItemInput]) throws -> [ItemEmbedding] {
        try embedEach(inputs).map { try $0.get() }
    }

    /// Embeds a micro-batch, one result per item: an invalid item (no modality, wrong
    /// frame size, malformed log-mel, non-finite result) fails alone. Each tower runs over
    /// all valid items that have its modality (text tokens packed, frames in CNN passes,
    /// audio clips packed), so BLAS sees large matrices; results equal embedding the items
    /// one by one. `threads` (default and at most the engine's `threads`) is how many threads this
    /// call may use; the results are the same whatever it is.
    public func embedEach(_ inputs: [ItemInput], threads: Int? = nil) -> [Result<ItemEmbedding, ModelError>] {
        let threads = min(max(threads ?? self.threads, 1), self.threads)
        var results = [Result<ItemEmbedding, ModelError>?](repeating: nil, count: inputs.count)
        var valid: [Int] = []
        for (i, input) in inputs.enumerated() {
            if let problem = problem(with: input) {
                results[i] = .failure(problem)
            } else {
                valid.append(i)
            }
        }
        do {
            // Messages name no batch position: they end up in one item's dead letter.
            for (i, result) in zip(valid, try embedValidated(valid.map { inputs[$0] }, threads: threads)) { results[i] = result }
        } catch {
            let failure = error as? ModelError ?? .invalidInput("\(error)")
            for i in valid { results[i] = .failure(failure) }
        }
        return results.map { $0! }
    }

    /// Why the engine cannot embed `input`, or nil. This is the one place "an item has
    /// something to embed" is decided (`ModelError.noContent`), after media decoding.
    func problem(with input: ItemInput) -> ModelError? {
        if let fused { return fused.problem(with: input) }
        let frames = input.frames.flatMap { $0.count > 0 ? $0 : nil }
        if input.text == nil && frames == nil && input.logMel == nil { return .noContent("no text, frames or audio the model can use") }
        if input.text != nil && text == nil && sentenceEncoder == nil { return .invalidInput("the model has no text tower") }
        if let frames {
            guard vision != nil, let size = manifest.towers.vision?.preprocessing.size else { return .invalidInput("the model has no vision tower") }
            if frames.size != size { return .invalidInput("frames are 3×\(frames.size)×\(frames.size), the vision tower reads 3×\(size)×\(size)") }
        }
        if let mel = input.logMel {
            guard audio != nil, let frontEnd = manifest.towers.audio?.preprocessing else { return .invalidInput("the model has no audio tower") }
            if mel.bins != frontEnd.nMels || mel.frames < 1 || mel.frames > frontEnd.windowFrames || mel.values.count != mel.bins * mel.frames {
                return .invalidInput(
                    "log-mel must be \(frontEnd.nMels)×T with 1 ≤ T ≤ \(frontEnd.windowFrames), got \(mel.bins)×\(mel.frames) with \(mel.values.count) values")
            }
        }
        return nil
    }

    /// The towers and fusion over items that passed `problem(with:)`.
    private func embedValidated(_ inputs: [ItemInput], threads: Int) throws -> [Result<ItemEmbedding, ModelError>] {
        if let fused {
            let outputs = try arenas.withArena { try fused.embed(inputs, arena: $0, threads: threads) }
            return outputs.map { output in
                guard output.vector.allSatisfy(\.isFinite) else {
                    return .failure(.invalidInput("the embedding is not finite (NaN or infinity in the frames or log-mel?)"))
                }
                return .success(ItemEmbedding(vector: output.vector, modalities: output.modalities, towers: [:],
                                              matryoshka: fused.matryoshka.count > 1 ? fused.dims : nil))
            }
        }
        var towers = [[Modality: [Float]]](repeating: [:], count: inputs.count)
        var counts = [ModalityCounts](repeating: ModalityCounts(), count: inputs.count)

        let textItems = inputs.indices.filter { inputs[$0].text != nil }
        if !textItems.isEmpty {
            // BERT + WordPiece (omni-small) or USE + SentencePiece (omni-base): the same packed passes.
            let sequences: [[Int32]]
            let embedPass: ([[Int32]], ScratchArena) throws -> [[Float]]
            if let (encoder, pieces) = sentenceEncoder {
                sequences = textItems.map { pieces.encode(inputs[$0].text!) }
                embedPass = { [threads] in try encoder.embed($0, arena: $1, threads: threads) }
            } else {
                guard let text, let tokenizer else { throw ModelError.invalidInput("the model has no text tower") }  // checked per item
                sequences = textItems.map { tokenizer.encode(inputs[$0].text!) }
                embedPass = { [threads] in try text.embed($0, arena: $1, threads: threads) }
            }
            var vectors: [[Float]] = []
            for pass in Self.passes(sequences.map(\.count), budget: Self.textTokensPerPass) {
                vectors += try arenas.withArena { try embedPass(Array(sequences[pass]), $0) }
            }
            for (i, vector) in zip(textItems, vectors) { towers[i][.text] = vector }
            for (i, sequence) in zip(textItems, sequences) { counts[i].textTokens = sequence.count }
        }

        let visionItems = inputs.indices.filter { (inputs[$0].frames?.count ?? 0) > 0 }
        if !visionItems.isEmpty {
            guard let vision else { throw ModelError.invalidInput("the model has no vision tower") }
            // One item's frames are already the tower's (N, 3, S, S) batch; several are concatenated.
            let batch = visionItems.count == 1 ? inputs[visionItems[0]].frames!
                : FrameBatch(size: inputs[visionItems[0]].frames!.size, count: visionItems.reduce(0) { $0 + inputs[$1].frames!.count },
                             values: visionItems.flatMap { inputs[$0].frames!.values })
            let features = try arenas.withArena { try vision.features(batch, arena: $0, threads: threads) }
            let width = vision.featureWidth
            var frame = 0
            for i in visionItems {
                let n = inputs[i].frames!.count
                var mean = [Float](repeating: 0, count: width)
                features.withUnsafeBufferPointer { meanRows($0.baseAddress! + frame * width, rows: n, width: width, out: &mean) }
                towers[i][.vision] = mean
                counts[i].visionFrames = n
                frame += n
            }
        }

        let audioItems = inputs.indices.filter { inputs[$0].logMel != nil }
        if !audioItems.isEmpty {
            guard let audio, let frontEnd = manifest.towers.audio?.preprocessing else { throw ModelError.invalidInput("the model has no audio tower") }
            let clips = audioItems.map { inputs[$0].logMel! }
            var vectors: [[Float]] = []
            for pass in Self.passes(clips.map { audio.positions(forFrames: $0.frames) }, budget: Self.audioPositionsPerPass) {
                vectors += try arenas.withArena { try audio.pooled(Array(clips[pass]), arena: $0, threads: threads) }
            }
            for (i, vector) in zip(audioItems, vectors) { towers[i][.audio] = vector }
            for (i, clip) in zip(audioItems, clips) { counts[i].audioSeconds = frontEnd.seconds(frames: clip.frames) }
        }

        return inputs.indices.map { i in
            Result {
                let vector = try fusion.fuse(towers[i])
                guard vector.allSatisfy(\.isFinite) else {
                    throw ModelError.invalidInput("the embedding is not finite (NaN or infinity in the frames or log-mel?)")
                }
                return ItemEmbedding(vector: vector, modalities: counts[i], towers: towers[i])
            }.mapError { $0 as? ModelError ?? .invalidInput("\($0)") }
        }
    }
}

extension EmbeddingEngine {
    /// Consecutive index ranges whose sizes sum to at most `budget` (a single larger
    /// element gets a pass of its own).
    static func passes(_ sizes: [Int], budget: Int) -> [Range<Int>] {
        var result: [Range<Int>] = []
        var start = 0, total = 0
        for (i, size) in sizes.enumerated() {
            if i > start && total + size > budget {
                result.append(start..<i)
                start = i
                total = 0
            }
            total += size
        }
        if start < sizes.count { result.append(start..<sizes.count) }
        return result
    }
}
