import Foundation

/// What a head file says about itself besides its tensors (`__metadata__`, all strings).
///
/// | key | value |
/// |---|---|
/// | `format` / `format_version` | `ember-head` / `1` |
/// | `name` | the head's name in the model id (`align`) |
/// | `base_model` | the model id of the fused vectors it was trained on (`omni-small@<hash>`) |
/// | `input_dim`, `output_dim`, `hidden_dim`, `activation` | layer sizes; `hidden_dim` 0 and `activation` `none` for a linear head |
/// | `matryoshka` | nested output sizes, largest first (`512,256,128`) |
/// | `hash` | 12 hex digits of FNV-1a-64 over the base model id, the layer spec and the tensor bytes |
/// | `sources`, `source_weights`, `seed`, `temperature`, `hard_negative_filter`, `thresholds`, `sinkhorn`, `epochs`, `validation` | how it was trained and what it scored on the validation split |
public struct HeadMetadata: Sendable, Equatable {
    public var name: String
    public var baseModel: String
    public var hash: String
    /// Training facts written as they are (`sources`, `seed`, `validation`, …).
    public var training: [String: String]

    public init(name: String, baseModel: String, hash: String = "", training: [String: String] = [:]) {
        self.name = name
        self.baseModel = baseModel
        self.hash = hash
        self.training = training
    }
}

/// A head file is unusable; the message names the file and what is wrong.
public struct HeadFileError: Error, Sendable, Equatable, CustomStringConvertible {
    public let path: String
    public let reason: String
    public var description: String { "\(path): \(reason)" }
}

extension ProjectionHead {
    public static let fileFormat = "ember-head"
    public static let fileFormatVersion = 1

    /// FNV-1a-64 over the base model id, the layer spec and every tensor's little-endian
    /// bytes: two heads with the same id compute the same function of the same base.
    public static func hash(layers: Layers, inputDim: Int, outputDim: Int, baseModel: String, tensors: [[Float]]) -> String {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        func mix<S: Sequence<UInt8>>(_ bytes: S) {
            for byte in bytes {
                hash ^= UInt64(byte)
                hash &*= 0x0000_0100_0000_01B3
            }
        }
        mix("\(baseModel)|\(layers.specification)|\(inputDim)|\(outputDim)".utf8)
        for tensor in tensors {
            for value in tensor { withUnsafeBytes(of: value.bitPattern.littleEndian) { mix($0) } }
        }
        let hex = String(hash, radix: 16)
        return String((String(repeating: "0", count: max(0, 16 - hex.count)) + hex).prefix(12))
    }

    /// A head with its hash computed from its contents.
    public static func make(
        layers: Layers, inputDim: Int, outputDim: Int, matryoshka: [Int], tensors: [[Float]], name: String, baseModel: String,
        training: [String: String] = [:]
    ) throws(ModelError) -> ProjectionHead {
        let hash = Self.hash(layers: layers, inputDim: inputDim, outputDim: outputDim, baseModel: baseModel, tensors: tensors)
        return try ProjectionHead(
            layers: layers, inputDim: inputDim, outputDim: outputDim, matryoshka: matryoshka, tensors: tensors,
            metadata: HeadMetadata(name: name, baseModel: baseModel, hash: hash, training: training))
    }

    /// Writes the head as safetensors; equal heads give equal bytes (no timestamps).
    public func write(to url: URL) throws {
        var metadata = metadata.training
        let (hidden, activation): (Int, String) = switch layers {
        case .linear: (0, "none")
        case .mlp(let h, let a): (h, a.rawValue)
        }
        metadata.merge([
            "format": Self.fileFormat, "format_version": "\(Self.fileFormatVersion)", "name": self.metadata.name,
            "base_model": self.metadata.baseModel, "hash": self.metadata.hash, "input_dim": "\(inputDim)",
            "output_dim": "\(outputDim)", "hidden_dim": "\(hidden)", "activation": activation,
            "matryoshka": matryoshka.map(String.init).joined(separator: ","),
        ]) { $1 }
        let shapes = layers.tensorShapes(input: inputDim, output: outputDim)
        try writeSafeTensors(zip(shapes, tensors).map { (name: $0.name, shape: $0.shape, values: $1) }, metadata: metadata, to: url)
    }

    /// Reads a head file. Every problem (not a head, another format version, missing or
    /// mis-shaped tensors, a hash that does not match the contents) is an error naming
    /// the file.
    public init(contentsOf url: URL) throws(HeadFileError) {
        let path = url.path
        func bad(_ reason: String) -> HeadFileError { HeadFileError(path: path, reason: reason) }
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(path: path) } catch { throw bad("\(error)") }
        var m = file.metadata
        guard m["format"] == Self.fileFormat else { throw bad("metadata format is \(m["format"] ?? "absent"), expected \(Self.fileFormat) (a head from ember align train)") }
        guard m["format_version"] == "\(Self.fileFormatVersion)" else {
            throw bad("format version \(m["format_version"] ?? "absent") (this build reads \(Self.fileFormatVersion))")
        }
        func int(_ key: String) throws(HeadFileError) -> Int {
            guard let value = m[key].flatMap(Int.init), value >= 0 else { throw bad("metadata \(key) is missing or not a non-negative integer") }
            return value
        }
        let input = try int("input_dim"), output = try int("output_dim"), hidden = try int("hidden_dim")
        guard input > 0, output > 0 else { throw bad("input_dim and output_dim must be positive") }
        let layers: Layers
        switch m["activation"] {
        case "none" where hidden == 0: layers = .linear
        case let name?:
            guard let activation = HeadActivation(rawValue: name), hidden > 0 else { throw bad("activation \(name) with hidden_dim \(hidden) is no head this build knows") }
            layers = .mlp(hidden: hidden, activation: activation)
        case nil: throw bad("metadata has no activation")
        }
        guard let base = m["base_model"], !base.isEmpty, let name = m["name"], !name.isEmpty, let hash = m["hash"] else {
            throw bad("metadata needs name, base_model and hash")
        }
        let sizes = (m["matryoshka"] ?? "").split(separator: ",").map { Int($0) }
        guard !sizes.isEmpty, !sizes.contains(nil) else { throw bad("metadata matryoshka is missing or not a list of sizes") }
        var tensors: [[Float]] = []
        let shapes = layers.tensorShapes(input: input, output: output)
        for shape in shapes {
            do { tensors.append(try file.floats(shape.name, shape: shape.shape)) } catch { throw bad("\(error)") }
        }
        let extra = Set(file.names).subtracting(shapes.map(\.name))
        guard extra.isEmpty else { throw bad("unexpected tensors \(extra.sorted())") }
        guard tensors.allSatisfy({ $0.allSatisfy(\.isFinite) }) else { throw bad("weights hold non-finite values") }
        let computed = Self.hash(layers: layers, inputDim: input, outputDim: output, baseModel: base, tensors: tensors)
        guard computed == hash else { throw bad("hash \(hash) in the metadata does not match the contents (\(computed)): the file was altered") }
        for key in ["format", "format_version", "name", "base_model", "hash", "input_dim", "output_dim", "hidden_dim", "activation", "matryoshka"] {
            m[key] = nil
        }
        do {
            try self.init(
                layers: layers, inputDim: input, outputDim: output, matryoshka: sizes.compactMap { $0 }, tensors: tensors,
                metadata: HeadMetadata(name: name, baseModel: base, hash: hash, training: m))
        } catch {
            throw bad("\(error)")
        }
    }
}

extension ProjectionHead.Layers {
    /// `linear`, `mlp-1024-gelu`.
    public var specification: String {
        switch self {
        case .linear: "linear"
        case .mlp(let hidden, let activation): "mlp-\(hidden)-\(activation.rawValue)"
        }
    }
}
