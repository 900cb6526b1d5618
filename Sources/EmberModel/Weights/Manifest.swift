import EmberContract
import Foundation

/// `manifest.json` of a model directory (format version 2, written by
/// `Ops/reference/ember_convert.py`): towers with architecture, config, weights file and
/// preprocessing; fusion; output dimension. The preprocessing objects are the contract's
/// types (`VisionPreprocessing`, `AudioFrontEnd`): EmberMedia builds its front end from
/// them, so a tower's preprocessing changes in the converter and the manifest only.
public struct ModelManifest: Codable, Sendable {
    /// 2: full vision preprocessing (resize rule, interpolation) and the audio window.
    public static let supportedFormat = 2

    public var format: Int
    public var id: String
    public var version: String
    public var weightsHash: String
    public var towers: Towers
    public var fusion: Fusion
    public var output: Output

    public struct Towers: Codable, Sendable {
        public var text: TextTower?
        public var vision: VisionTower?
        public var audio: AudioTower?
    }

    /// `architecture` `bert` carries `config` and `tokenizer`;
    /// `universal-sentence-encoder` carries `use_config` and `sentencepiece`;
    /// `qwen2-bpe` (the VLM-fusion model's text: the decoder's own tokenizer) carries `tokenizer_json`.
    public struct TextTower: Codable, Sendable {
        public var architecture: String
        public var weights: String
        public var config: BertConfig?
        public var tokenizer: WordPieceConfig?
        public var useConfig: UniversalSentenceEncoderConfig?
        public var sentencepiece: SentencePieceConfig?
        public var tokenizerJson: String?
    }

    /// `architecture` `efficientnet-lite` carries `config`; `qwen2-vl-vision` (VLM fusion) `qwen2_vision`.
    public struct VisionTower: Codable, Sendable {
        public var architecture: String
        public var weights: String
        public var config: EfficientNetLiteConfig?
        public var qwen2Vision: Qwen2VisionConfig?
        public var preprocessing: VisionPreprocessing
    }

    public struct AudioTower: Codable, Sendable {
        public var architecture: String
        public var weights: String
        public var config: WhisperEncoderConfig
        public var preprocessing: AudioFrontEnd
    }

    public struct Fusion: Codable, Sendable {
        /// `late`: weighted concatenation of L2-normalized tower outputs, then a global L2.
        /// `qwen2-vl-fusion`: one Qwen2 decoder reads every modality's tokens (`vlm`).
        public var kind: String
        /// Towers in concatenation order (late fusion) or in sequence order (VLM fusion).
        public var order: [Modality]
        public var weights: [Modality: Float]
        /// The VLM-fusion model, when `kind` is `qwen2-vl-fusion`.
        public var vlm: VLMFusionConfig?
    }

    public struct Output: Codable, Sendable {
        public var dim: Int
    }

    /// Reads and validates `directory/manifest.json`.
    public static func load(directory: URL) throws -> ModelManifest {
        let url = directory.appendingPathComponent("manifest.json")
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ModelError.fileUnreadable(path: url.path, reason: "\(error.localizedDescription)")
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let manifest: ModelManifest
        do { manifest = try decoder.decode(ModelManifest.self, from: data) } catch let DecodingError.keyNotFound(key, context) {
            throw ModelError.invalidConfig(key: jsonPath(context.codingPath + [key]), reason: "missing")
        } catch let DecodingError.typeMismatch(_, context) {
            throw ModelError.invalidConfig(key: jsonPath(context.codingPath), reason: context.debugDescription)
        } catch let DecodingError.valueNotFound(_, context) {
            throw ModelError.invalidConfig(key: jsonPath(context.codingPath), reason: "null")
        } catch {
            throw ModelError.invalidConfig(key: "manifest.json", reason: "\(error)")
        }
        guard manifest.format == supportedFormat else {
            throw ModelError.unsupportedFormat(found: manifest.format, supported: supportedFormat)
        }
        try manifest.validate()
        return manifest
    }

    func validate() throws {
        if fusion.kind == VLMFusionConfig.kind { return try validateVLMFusion() }
        if let text = towers.text {
            switch text.architecture {
            case "bert":
                if text.config == nil { throw ModelError.invalidConfig(key: "towers.text.config", reason: "missing") }
                if text.tokenizer == nil { throw ModelError.invalidConfig(key: "towers.text.tokenizer", reason: "missing") }
            case UniversalSentenceEncoderConfig.architecture:
                if text.useConfig == nil { throw ModelError.invalidConfig(key: "towers.text.use_config", reason: "missing") }
                if text.sentencepiece == nil { throw ModelError.invalidConfig(key: "towers.text.sentencepiece", reason: "missing") }
            default:
                throw ModelError.invalidConfig(
                    key: "towers.text.architecture",
                    reason: "\(text.architecture) is not supported (bert, \(UniversalSentenceEncoderConfig.architecture))")
            }
        }
        if let vision = towers.vision {
            guard vision.architecture == "efficientnet-lite" else {
                throw ModelError.invalidConfig(key: "towers.vision.architecture", reason: "\(vision.architecture) is not supported (efficientnet-lite)")
            }
            if vision.config == nil { throw ModelError.invalidConfig(key: "towers.vision.config", reason: "missing") }
            if let problem = vision.preprocessing.problem {
                throw ModelError.invalidConfig(key: "towers.vision.preprocessing", reason: problem)
            }
        }
        try validateAudio()
        guard fusion.kind == "late" else {
            throw ModelError.invalidConfig(key: "fusion.kind", reason: "\(fusion.kind) is not supported (late, \(VLMFusionConfig.kind))")
        }
        var total = 0
        for modality in fusion.order {
            guard let width = width(of: modality) else {
                throw ModelError.invalidConfig(key: "fusion.order", reason: "tower \(modality.rawValue) is not in the manifest")
            }
            total += width
        }
        guard total == output.dim else {
            throw ModelError.invalidConfig(key: "output.dim", reason: "\(output.dim) but the fused towers give \(total)")
        }
    }

    func validateAudio() throws {
        if let audio = towers.audio {
            guard audio.architecture == "whisper-encoder" else {
                throw ModelError.invalidConfig(key: "towers.audio.architecture", reason: "\(audio.architecture) is not supported (whisper-encoder)")
            }
            let frontEnd = audio.preprocessing
            if let problem = frontEnd.problem { throw ModelError.invalidConfig(key: "towers.audio.preprocessing", reason: problem) }
            guard frontEnd.nMels == audio.config.numMelBins else {
                throw ModelError.invalidConfig(key: "towers.audio.preprocessing.n_mels", reason: "\(frontEnd.nMels) but the encoder reads \(audio.config.numMelBins) bins")
            }
            guard frontEnd.windowFrames <= 2 * audio.config.maxSourcePositions else {
                throw ModelError.invalidConfig(
                    key: "towers.audio.preprocessing.window_seconds",
                    reason: "\(frontEnd.windowFrames) frames, more than the encoder's \(2 * audio.config.maxSourcePositions)")
            }
        }
    }
}

extension ModelManifest {
    /// The width of a tower's output vector; nil when the manifest has no such tower.
    public func width(of modality: Modality) -> Int? {
        switch modality {
        case .text: towers.text?.config?.hiddenSize ?? towers.text?.useConfig?.outputSize
        case .vision: towers.vision?.config?.headChannels
        case .audio: towers.audio?.config.dModel
        }
    }
}

/// A decoding path in the file's own snake_case names, e.g. `towers.audio.config.d_model`.
private func jsonPath(_ path: [any CodingKey]) -> String {
    path.map { key in
        if let index = key.intValue { return "[\(index)]" }
        return key.stringValue.reduce(into: "") { out, c in
            if c.isUppercase { out += "_" + c.lowercased() } else { out.append(c) }
        }
    }.joined(separator: ".")
}
