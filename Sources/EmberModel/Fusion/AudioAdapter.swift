import EmberContract

// SAIL audio adapter (reference: Ops/reference/sail_parts.py `audio_adapter`): each 10 s
// chunk of audio is embedded by the audio tower (the Whisper encoder's states, mean-pooled)
// and mapped by Linear–act–Linear to one token of the language model's width.
//
// Tensor names (prefix `audio_adapter.`, `nn.Sequential` indices):
//   0.{weight,bias}  (H, A), (H)   then hidden_act (exact GELU by default)
//   2.{weight,bias}  (O, H), (O)
// Shape legend: A input_size (the audio tower's width), H intermediate_size, O output_size.

/// The audio adapter. Immutable after init; `encode` may run concurrently with one arena per caller.
public final class AudioAdapter: Sendable {
    public let config: AudioAdapterConfig
    let up, upBias: [Float]      // 0: (H, A), (H)
    let down, downBias: [Float]  // 2: (O, H), (O)

    /// Loads the tensors under `prefix`; a missing or mis-shaped tensor, or an unknown one
    /// under the prefix, is a `ModelError` naming it.
    public init(weights: SafeTensorsFile, prefix: String = "audio_adapter.", config: AudioAdapterConfig) throws {
        try config.validate()
        self.config = config
        let a = config.inputSize, h = config.intermediateSize, o = config.outputSize
        var loader = ScopedTensorLoader(weights, prefix: prefix)
        up = try loader.take("0.weight", [h, a])
        upBias = try loader.take("0.bias", [h])
        down = try loader.take("2.weight", [o, h])
        downBias = try loader.take("2.bias", [o])
        try loader.finish()
    }

    /// Scratch floats `encode` needs for `chunks` chunk embeddings.
    public func scratchFloats(chunks: Int) -> Int { chunks * (config.inputSize + config.intermediateSize + config.outputSize) }

    /// One (A) embedding per audio chunk → one (O) token per chunk.
    public func encode(chunks: [[Float]], arena: ScratchArena, threads: Int = 1) throws -> [[Float]] {
        let a = config.inputSize, h = config.intermediateSize, o = config.outputSize, n = chunks.count
        for (i, chunk) in chunks.enumerated() where chunk.count != a {
            throw ModelError.invalidInput("audio chunk embedding \(i) has \(chunk.count) values, the adapter takes input_size \(a)")
        }
        guard n > 0 else { return [] }
        arena.begin(floats: scratchFloats(chunks: n))
        let x = arena.carve(n * a), hidden = arena.carve(n * h), out = arena.carve(n * o)
        for (i, chunk) in chunks.enumerated() { (x + i * a).update(from: chunk, count: a) }
        linear(x, rows: n, inFeatures: a, weight: up, bias: upBias, outFeatures: h, out: hidden, threads: threads)
        config.hiddenAct.apply(hidden, count: n * h, threads: threads)
        linear(hidden, rows: n, inFeatures: h, weight: down, bias: downBias, outFeatures: o, out: out, threads: threads)
        return (0..<n).map { Array(UnsafeBufferPointer(start: out + $0 * o, count: o)) }
    }

    /// One token per `seconds`-long chunk of `mel` (the last chunk may be shorter; no
    /// padding): each chunk through `encoder` (mean-pooled states), then this adapter.
    public func tokens(for mel: LogMel, encoder: WhisperEncoder, frontEnd: AudioFrontEnd, seconds: Double = 10,
                       arena: ScratchArena, threads: Int = 1) throws -> [[Float]] {
        guard encoder.config.dModel == config.inputSize else {
            throw ModelError.invalidConfig(key: "input_size", reason: "\(config.inputSize) differs from the audio tower's d_model \(encoder.config.dModel)")
        }
        let chunks = Self.chunks(of: mel, frames: max(1, Int(seconds * Double(frontEnd.sampleRate)) / frontEnd.hopLength))
        guard !chunks.isEmpty else { return [] }
        return try encode(chunks: encoder.pooled(chunks, arena: arena, threads: threads), arena: arena, threads: threads)
    }

    /// `mel` (M, T) cut along time into pieces of `frames` frames (the last one shorter).
    public static func chunks(of mel: LogMel, frames: Int) -> [LogMel] {
        precondition(frames > 0, "chunk length must be positive")
        return stride(from: 0, to: mel.frames, by: frames).map { start in
            let length = min(frames, mel.frames - start)
            var values: [Float] = []
            values.reserveCapacity(mel.bins * length)
            for bin in 0..<mel.bins { values += mel.values[bin * mel.frames + start ..< bin * mel.frames + start + length] }
            return LogMel(bins: mel.bins, frames: length, values: values)
        }
    }
}

/// The adapter's configuration (`audio_adapter_config`; snake_case or camelCase keys).
public struct AudioAdapterConfig: Codable, Sendable, Equatable {
    /// A: the audio tower's width (Whisper `d_model`).
    public var inputSize: Int
    public var intermediateSize: Int
    /// O: the language model's width.
    public var outputSize: Int
    public var hiddenAct: HiddenActivation = .gelu

    public init(inputSize: Int, intermediateSize: Int, outputSize: Int, hiddenAct: HiddenActivation = .gelu) {
        (self.inputSize, self.intermediateSize, self.outputSize, self.hiddenAct) = (inputSize, intermediateSize, outputSize, hiddenAct)
    }

    func validate() throws {
        for (key, value) in [("input_size", inputSize), ("intermediate_size", intermediateSize), ("output_size", outputSize)] where value <= 0 {
            throw ModelError.invalidConfig(key: key, reason: "must be positive, got \(value)")
        }
    }

    enum CodingKeys: String, CodingKey { case inputSize, intermediateSize, outputSize, hiddenAct }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: FlexibleKey.self)
        func required(_ key: String) throws -> Int {
            guard let value: Int = try c.value(key) else { throw ModelError.invalidConfig(key: key, reason: "missing") }
            return value
        }
        inputSize = try required("input_size")
        intermediateSize = try required("intermediate_size")
        outputSize = try required("output_size")
        if let act: String = try c.value("hidden_act") { hiddenAct = try HiddenActivation(key: "hidden_act", value: act) }
    }
}
