import Foundation

/// `manifest.json` of a model directory (format version 1, written by
/// `Ops/reference/ember_convert.py`): towers with architecture, config, weights file and
/// preprocessing; fusion; output dimension.
public struct ModelManifest: Codable, Sendable {
    public static let supportedFormat = 1

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

    public struct TextTower: Codable, Sendable {
        public var architecture: String
        public var weights: String
        public var config: BertConfig
        public var tokenizer: WordPieceConfig
    }

    public struct VisionTower: Codable, Sendable {
        public var architecture: String
        public var weights: String
        public var config: EfficientNetLiteConfig
        public var preprocessing: ImagePreprocessing
    }

    public struct ImagePreprocessing: Codable, Sendable {
        /// Frames are `3 × imageSize × imageSize` RGB, `(value / 255 - mean) / std` per channel.
        public var imageSize: Int
        public var mean: [Float]
        public var std: [Float]

        /// A frame for the vision tower from 8-bit RGB (`imageSize²` pixels, row-major,
        /// R G B interleaved, already scaled to the tower's size): CHW floats,
        /// `(value / 255 − mean[c]) / std[c]`.
        public func normalize(rgb: [UInt8]) throws -> [Float] {
            let plane = imageSize * imageSize
            guard rgb.count == plane * 3 else {
                throw ModelError.invalidInput("frame has \(rgb.count) bytes, expected \(imageSize)×\(imageSize)×3 RGB")
            }
            var chw = [Float](repeating: 0, count: plane * 3)
            for c in 0..<3 {
                let scale = 1 / (255 * std[c]), shift = mean[c] / std[c]
                for p in 0..<plane { chw[c * plane + p] = Float(rgb[p * 3 + c]) * scale - shift }
            }
            return chw
        }
    }

    public struct AudioTower: Codable, Sendable {
        public var architecture: String
        public var weights: String
        public var config: WhisperEncoderConfig
        public var preprocessing: AudioPreprocessing
    }

    public struct AudioPreprocessing: Codable, Sendable {
        public var sampleRate: Int
        public var nFft: Int
        public var hopLength: Int
        public var nMels: Int
        public var maxSeconds: Double
    }

    public struct Fusion: Codable, Sendable {
        /// `late`: weighted concatenation of L2-normalized tower outputs, then a global L2.
        public var kind: String
        /// Tower names in concatenation order.
        public var order: [String]
        public var weights: [String: Float]
    }

    public struct Output: Codable, Sendable {
        public var dim: Int
        public var matryoshka: [Int]
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
        if let text = towers.text, text.architecture != "bert" {
            throw ModelError.invalidConfig(key: "towers.text.architecture", reason: "\(text.architecture) is not supported (bert)")
        }
        if let vision = towers.vision {
            guard vision.architecture == "efficientnet-lite" else {
                throw ModelError.invalidConfig(key: "towers.vision.architecture", reason: "\(vision.architecture) is not supported (efficientnet-lite)")
            }
            guard vision.preprocessing.mean.count == 3, vision.preprocessing.std.count == 3,
                vision.preprocessing.std.allSatisfy({ $0 > 0 }), vision.preprocessing.imageSize > 0
            else { throw ModelError.invalidConfig(key: "towers.vision.preprocessing", reason: "needs 3 means, 3 positive stds, image_size > 0") }
        }
        if let audio = towers.audio, audio.architecture != "whisper-encoder" {
            throw ModelError.invalidConfig(key: "towers.audio.architecture", reason: "\(audio.architecture) is not supported (whisper-encoder)")
        }
        guard fusion.kind == "late" else { throw ModelError.invalidConfig(key: "fusion.kind", reason: "\(fusion.kind) is not supported (late)") }
        let widths = ["text": towers.text?.config.hiddenSize, "vision": towers.vision?.config.headChannels, "audio": towers.audio?.config.dModel]
        var total = 0
        for name in fusion.order {
            guard let width = widths[name] ?? nil else {
                throw ModelError.invalidConfig(key: "fusion.order", reason: "tower \(name) is not in the manifest")
            }
            total += width
        }
        guard total == output.dim else {
            throw ModelError.invalidConfig(key: "output.dim", reason: "\(output.dim) but the fused towers give \(total)")
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
