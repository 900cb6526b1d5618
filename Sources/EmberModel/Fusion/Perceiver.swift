// SAIL perceiver, per frame (reference: Ops/reference/sail_parts.py `Perceiver`): N_q
// learnable queries are put in front of a frame's vision tokens, the (N_q + L) rows go
// through pre-norm blocks with bidirectional attention (no positions), and only the query
// rows are kept and projected to the language model's width. Frames are packed along rows;
// each attends only to itself.
//
// Tensor names (prefix `perceiver.`):
//   queries                            (N_q, D)
//   blocks.{i}.norm1.{weight,bias}     (D)          LayerNorm, layer_norm_eps
//   blocks.{i}.attn.qkv.{weight,bias}  (3D, D), (3D)
//   blocks.{i}.attn.proj.{weight,bias} (D, D), (D)
//   blocks.{i}.norm2.{weight,bias}     (D)
//   blocks.{i}.mlp.fc1.{weight,bias}   (F, D), (F)  F = D · mlp_ratio, hidden_act between
//   blocks.{i}.mlp.fc2.{weight,bias}   (D, F), (D)
//   proj.{weight,bias}                 (O, D), (O)
//
// Shape legend: D hidden_size (the vision tower's output width), N_q num_queries,
// O output_size (the language model's width), L a frame's vision tokens.

/// The perceiver. Immutable after init; `encode` may run concurrently with one arena per caller.
public final class Perceiver: Sendable {
    public let config: PerceiverConfig
    let queries: [Float]        // queries (N_q, D)
    let blocks: [PreNormBlock]
    let proj, projBias: [Float] // proj (O, D), (O)
    public let precision: ComputePrecision

    /// Loads the tensors under `prefix`; a missing or mis-shaped tensor, or an unknown one
    /// under the prefix, is a `ModelError` naming it. `precision` .bf16 runs the blocks'
    /// linear layers and attention in bf16 with fp32 sums (the projection stays fp32).
    public init(weights: SafeTensorsFile, prefix: String = "perceiver.", config: PerceiverConfig,
                precision: ComputePrecision = .fp32) throws {
        try config.validate()
        self.config = config
        self.precision = precision
        let d = config.hiddenSize
        var loader = ScopedTensorLoader(weights, prefix: prefix)
        queries = try loader.take("queries", [config.numQueries, d])
        blocks = try (0..<config.depth).map {
            try PreNormBlock(&loader, index: $0, width: d, mlpWidth: config.mlpWidth, heads: config.numHeads,
                             activation: config.hiddenAct, eps: config.layerNormEps, precision: precision)
        }
        proj = try loader.take("proj.weight", [config.outputSize, d])
        projBias = try loader.take("proj.bias", [config.outputSize])
        try loader.finish()
    }

    /// Scratch floats one `encode` over frames of these token counts needs.
    public func scratchFloats(frameTokens: [Int], threads: Int = 1) -> Int {
        let q = config.numQueries, d = config.hiddenSize
        let rows = frameTokens.reduce(0) { $0 + q + $1 }, longest = q + (frameTokens.max() ?? 0)
        return rows * d + frameTokens.count * q * d
            + PreNormBlock.scratchFloats(tokens: rows, longest: longest, width: d, mlpWidth: config.mlpWidth,
                                         heads: config.numHeads, threads: threads, precision: precision)
    }

    /// Per frame, its vision tokens (L_f, D) row-major → its (N_q, O) query tokens.
    /// `threads` is how many threads the pass may use; results do not depend on it.
    public func encode(frames: [[Float]], arena: ScratchArena, threads: Int = 1) throws -> [[Float]] {
        let q = config.numQueries, d = config.hiddenSize, o = config.outputSize
        for (i, frame) in frames.enumerated() where frame.isEmpty || frame.count % d != 0 {
            throw ModelError.invalidInput("perceiver frame \(i) has \(frame.count) values, expected a positive multiple of hidden_size \(d)")
        }
        guard !frames.isEmpty else { return [] }
        let lengths = frames.map { q + $0.count / d }
        var starts: [Int] = []
        var rows = 0
        for length in lengths { starts.append(rows); rows += length }

        arena.begin(floats: scratchFloats(frameTokens: frames.map { $0.count / d }, threads: threads))
        let x = arena.carve(rows * d), kept = arena.carve(frames.count * q * d)
        let scratch = PreNormBlock.Scratch(arena, tokens: rows, longest: lengths.max()!, width: d, mlpWidth: config.mlpWidth,
                                           heads: config.numHeads, threads: threads, precision: precision)
        // x = [queries; frame tokens] per frame.
        for (frame, start) in zip(frames, starts) {
            (x + start * d).update(from: queries, count: q * d)
            (x + (start + q) * d).update(from: frame, count: frame.count)
        }
        for block in blocks {
            block.forward(x, tokens: rows, starts: starts, lengths: lengths, scratch: scratch, threads: threads)
        }
        // Only the query rows go on: proj(x[:N_q]) per frame.
        for (f, start) in starts.enumerated() {
            (kept + f * q * d).update(from: x + start * d, count: q * d)
        }
        linear(kept, rows: frames.count * q, inFeatures: d, weight: proj, bias: projBias, outFeatures: o, out: x, threads: threads)
        return (0..<frames.count).map { Array(UnsafeBufferPointer(start: x + $0 * q * o, count: q * o)) }
    }
}

/// The perceiver's configuration (`perceiver_config` in an Ember VLM-fusion model; keys as
/// in Ops/reference/sail_parts.py, snake_case or camelCase).
public struct PerceiverConfig: Codable, Sendable, Equatable {
    /// D: the width of the frame tokens (the vision tower's `hidden_size`) and of the blocks.
    public var hiddenSize: Int
    /// O: the language model's width.
    public var outputSize: Int
    public var numQueries = 16
    public var depth = 1
    public var numHeads: Int
    public var mlpRatio: Double = 4
    public var hiddenAct: HiddenActivation = .gelu
    public var layerNormEps: Float = 1e-6

    public init(hiddenSize: Int, outputSize: Int, numQueries: Int = 16, depth: Int = 1, numHeads: Int,
                mlpRatio: Double = 4, hiddenAct: HiddenActivation = .gelu, layerNormEps: Float = 1e-6) {
        (self.hiddenSize, self.outputSize, self.numQueries, self.depth, self.numHeads) = (hiddenSize, outputSize, numQueries, depth, numHeads)
        (self.mlpRatio, self.hiddenAct, self.layerNormEps) = (mlpRatio, hiddenAct, layerNormEps)
    }

    /// F = hidden_size · mlp_ratio.
    public var mlpWidth: Int { Int(Double(hiddenSize) * mlpRatio) }

    func validate() throws {
        for (key, value) in [("hidden_size", hiddenSize), ("output_size", outputSize), ("num_queries", numQueries),
                             ("depth", depth), ("num_heads", numHeads), ("mlp_ratio", mlpWidth)] where value <= 0 {
            throw ModelError.invalidConfig(key: key, reason: "must be positive, got \(value)")
        }
        guard hiddenSize % numHeads == 0 else {
            throw ModelError.invalidConfig(key: "num_heads", reason: "\(numHeads) does not divide hidden_size \(hiddenSize)")
        }
        guard layerNormEps > 0 else { throw ModelError.invalidConfig(key: "layer_norm_eps", reason: "must be positive, got \(layerNormEps)") }
    }

    enum CodingKeys: String, CodingKey {
        case hiddenSize, outputSize, numQueries, depth, numHeads, mlpRatio, hiddenAct, layerNormEps
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: FlexibleKey.self)
        func required<T: Decodable>(_ key: String) throws -> T {
            guard let value: T = try c.value(key) else { throw ModelError.invalidConfig(key: key, reason: "missing") }
            return value
        }
        hiddenSize = try required("hidden_size")
        outputSize = try required("output_size")
        numHeads = try required("num_heads")
        numQueries = try c.value("num_queries") ?? numQueries
        depth = try c.value("depth") ?? depth
        mlpRatio = try c.value("mlp_ratio") ?? mlpRatio
        if let act: String = try c.value("hidden_act") { hiddenAct = try HiddenActivation(key: "hidden_act", value: act) }
        layerNormEps = try c.value("layer_norm_eps") ?? layerNormEps
    }
}
