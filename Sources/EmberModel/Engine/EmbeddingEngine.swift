import Foundation
import Logging

/// What the pipeline hands the engine for one item. Any subset of modalities may be present.
public struct ItemInput: Sendable {
    /// Title, tags, OCR and ASR text already joined by the caller.
    public var text: String?
    /// Preprocessed frames, each `3 × S × S` floats in CHW order, S = the manifest's
    /// `image_size`, normalized with its mean/std: `(rgb / 255 − mean) / std`.
    public var frames: [[Float]]
    /// 80 × T log-mel spectrogram of 16 kHz mono audio; only the first 30 s (T ≤ 3000) are used.
    public var logMel: LogMel?

    public init(text: String? = nil, frames: [[Float]] = [], logMel: LogMel? = nil) {
        self.text = text
        self.frames = frames
        self.logMel = logMel
    }
}

/// Per-modality facts for the output record.
public struct ModalityInfo: Sendable, Equatable {
    public var visionFrames: Int
    public var textTokens: Int
    public var audioSeconds: Double
}

/// The fused embedding of one item, plus what went into it.
public struct ItemEmbedding: Sendable {
    /// L2-normalized, `output.dim` values.
    public var vector: [Float]
    public var modalities: ModalityInfo
    /// Each present tower's pooled vector before fusion weighting: text is L2-normalized
    /// (sentence-transformers style), vision is the mean over frames, audio the mean over positions.
    public var towers: [String: [Float]]

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
/// threads, but with 2 cores one engine thread plus `threads` BLAS threads is the setting.
public final class EmbeddingEngine: Sendable {
    public let manifest: ModelManifest
    public let text: BertEncoder?
    public let tokenizer: WordPieceTokenizer?
    public let vision: EfficientNetLite?
    public let audio: WhisperEncoder?
    public let fusion: LateFusion
    let arenas: ArenaPool

    /// Text tokens per BERT pass and encoder positions per Whisper pass (two 30 s clips):
    /// larger micro-batches run in several passes, which bounds scratch memory.
    public static let textTokensPerPass = 2048
    public static let audioPositionsPerPass = 3000

    /// `omni-small@<weights hash>`, the `model` field of output records.
    public var modelID: String { "\(manifest.id)@\(manifest.weightsHash)" }

    /// Loads every tower of `modelDirectory` and sets OpenBLAS to `threads` threads.
    public init(modelDirectory: URL, threads: Int = 1, logger: Logger = Logger(label: "ember.model")) throws {
        BLASThreads.count = threads
        let manifest = try ModelManifest.load(directory: modelDirectory)
        self.manifest = manifest
        func file(_ name: String) throws -> SafeTensorsFile {
            try SafeTensorsFile(path: modelDirectory.appendingPathComponent(name).path)
        }
        var widths: [String: Int] = [:]
        if let t = manifest.towers.text {
            text = try BertEncoder(weights: try file(t.weights), config: t.config)
            tokenizer = try WordPieceTokenizer(vocabularyFile: modelDirectory.appendingPathComponent(t.tokenizer.vocab), config: t.tokenizer)
            widths["text"] = t.config.hiddenSize
        } else {
            text = nil
            tokenizer = nil
        }
        if let v = manifest.towers.vision {
            vision = try EfficientNetLite(weights: try file(v.weights), config: v.config)
            widths["vision"] = v.config.headChannels
        } else {
            vision = nil
        }
        if let a = manifest.towers.audio {
            audio = try WhisperEncoder(weights: try file(a.weights), config: a.config)
            widths["audio"] = a.config.dModel
        } else {
            audio = nil
        }
        fusion = LateFusion(order: manifest.fusion.order, widths: widths, weights: manifest.fusion.weights)
        // Scratch sized once for the largest pass of each tower (pages are touched only when used).
        var scratch = 0
        if let text, let t = manifest.towers.text {
            let longest = min(t.tokenizer.maxLength, t.config.maxPositionEmbeddings)
            scratch = max(scratch, text.scratchFloats(tokens: Self.textTokensPerPass, maxLength: longest))
        }
        if let vision, let size = manifest.towers.vision?.preprocessing.imageSize {
            scratch = max(scratch, vision.scratchFloats(frames: EfficientNetLite.framesPerPass, size: size))
        }
        if let audio {
            let window = 2 * audio.config.maxSourcePositions
            scratch = max(scratch, audio.scratchFloats(frames: [Int](repeating: window, count: max(1, Self.audioPositionsPerPass / audio.config.maxSourcePositions))))
        }
        arenas = ArenaPool(initialFloats: scratch)
        logger.info("model loaded", metadata: [
            "scratch_mb": "\(String(format: "%.1f", Double(scratch * 4) / 1_048_576))",
            "model": "\(manifest.id)@\(manifest.weightsHash)", "dim": "\(manifest.output.dim)",
            "towers": "\(widths.keys.sorted().joined(separator: ","))", "blas_threads": "\(threads)",
        ])
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
    /// one by one.
    public func embedEach(_ inputs: [ItemInput]) -> [Result<ItemEmbedding, ModelError>] {
        var results = [Result<ItemEmbedding, ModelError>?](repeating: nil, count: inputs.count)
        var valid: [Int] = []
        for (i, input) in inputs.enumerated() {
            if let problem = problem(with: input) {
                results[i] = .failure(.invalidInput("item \(i): \(problem)"))
            } else {
                valid.append(i)
            }
        }
        do {
            for (i, result) in zip(valid, try embedValidated(valid.map { inputs[$0] })) {
                results[i] = result.mapError { error in
                    guard case let .invalidInput(reason) = error else { return error }
                    return .invalidInput("item \(i): \(reason)")
                }
            }
        } catch {
            let failure = error as? ModelError ?? .invalidInput("\(error)")
            for i in valid { results[i] = .failure(failure) }
        }
        return results.map { $0! }
    }

    /// Why the engine cannot embed `input`, or nil.
    func problem(with input: ItemInput) -> String? {
        if input.text == nil && input.frames.isEmpty && input.logMel == nil { return "no text, frames or audio" }
        if input.text != nil && text == nil { return "the model has no text tower" }
        if !input.frames.isEmpty {
            guard vision != nil, let size = manifest.towers.vision?.preprocessing.imageSize else { return "the model has no vision tower" }
            if let frame = input.frames.first(where: { $0.count != 3 * size * size }) {
                return "frame has \(frame.count) values, expected 3×\(size)×\(size)"
            }
        }
        if let mel = input.logMel {
            guard let audio else { return "the model has no audio tower" }
            let bins = audio.config.numMelBins
            if mel.bins != bins || mel.frames < 1 || mel.values.count != mel.bins * mel.frames {
                return "log-mel must be \(bins)×T with T ≥ 1, got \(mel.bins)×\(mel.frames) with \(mel.values.count) values"
            }
        }
        return nil
    }

    /// The towers and fusion over items that passed `problem(with:)`.
    private func embedValidated(_ inputs: [ItemInput]) throws -> [Result<ItemEmbedding, ModelError>] {
        var towers = [[String: [Float]]](repeating: [:], count: inputs.count)
        var info = [ModalityInfo](repeating: ModalityInfo(visionFrames: 0, textTokens: 0, audioSeconds: 0), count: inputs.count)

        let textItems = inputs.indices.filter { inputs[$0].text != nil }
        if !textItems.isEmpty {
            guard let text, let tokenizer else { throw ModelError.invalidInput("the model has no text tower") }  // checked per item
            let sequences = textItems.map { tokenizer.encode(inputs[$0].text!) }
            var vectors: [[Float]] = []
            for pass in Self.passes(sequences.map(\.count), budget: Self.textTokensPerPass) {
                vectors += try arenas.withArena { try text.embed(Array(sequences[pass]), arena: $0) }
            }
            for (i, vector) in zip(textItems, vectors) { towers[i]["text"] = vector }
            for (i, sequence) in zip(textItems, sequences) { info[i].textTokens = sequence.count }
        }

        let visionItems = inputs.indices.filter { !inputs[$0].frames.isEmpty }
        if !visionItems.isEmpty {
            guard let vision, let size = manifest.towers.vision?.preprocessing.imageSize else {
                throw ModelError.invalidInput("the model has no vision tower")
            }
            let frames = visionItems.flatMap { inputs[$0].frames }
            let features = try arenas.withArena { try vision.features(frames: frames, size: size, arena: $0) }
            let width = vision.featureWidth
            var frame = 0
            for i in visionItems {
                let n = inputs[i].frames.count
                var mean = [Float](repeating: 0, count: width)
                features.withUnsafeBufferPointer { meanRows($0.baseAddress! + frame * width, rows: n, width: width, out: &mean) }
                towers[i]["vision"] = mean
                info[i].visionFrames = n
                frame += n
            }
        }

        let audioItems = inputs.indices.filter { inputs[$0].logMel != nil }
        if !audioItems.isEmpty {
            guard let audio, let pre = manifest.towers.audio?.preprocessing else { throw ModelError.invalidInput("the model has no audio tower") }
            // Whisper's window is 30 s: longer audio is embedded from its first 30 s.
            let limit = 2 * audio.config.maxSourcePositions
            let clips = audioItems.map { i in
                let mel = inputs[i].logMel!
                return mel.frames <= limit ? mel : mel.prefix(frames: limit)
            }
            var vectors: [[Float]] = []
            for pass in Self.passes(clips.map { audio.positions(forFrames: $0.frames) }, budget: Self.audioPositionsPerPass) {
                vectors += try arenas.withArena { try audio.pooled(Array(clips[pass]), arena: $0) }
            }
            for (i, vector) in zip(audioItems, vectors) { towers[i]["audio"] = vector }
            for (i, clip) in zip(audioItems, clips) {
                info[i].audioSeconds = Double(clip.frames * pre.hopLength) / Double(pre.sampleRate)
            }
        }

        return inputs.indices.map { i in
            Result {
                let vector = try fusion.fuse(towers[i])
                guard vector.allSatisfy(\.isFinite) else {
                    throw ModelError.invalidInput("the embedding is not finite (NaN or infinity in the frames or log-mel?)")
                }
                return ItemEmbedding(vector: vector, modalities: info[i], towers: towers[i])
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

extension URL {
    /// The default model directory: `$EMBER_MODEL_DIR`, else `~/.cache/ember/models/omni-small`.
    public static var defaultModelDirectory: URL {
        if let path = ProcessInfo.processInfo.environment["EMBER_MODEL_DIR"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        let cache = ProcessInfo.processInfo.environment["XDG_CACHE_HOME"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache")
        return cache.appendingPathComponent("ember/models/omni-small")
    }
}
