/// A Qwen2-VL checkpoint's `vision_config` (Hugging Face `Qwen2VLVisionConfig` names and
/// defaults). Decodes `config.json` as written (snake_case keys) or through a decoder with
/// `.convertFromSnakeCase` (as the manifest is read); the original Qwen2-VL files' `in_chans`
/// is accepted for `in_channels`, and `rope_parameters.rope_theta` defaults to 10000.
public struct Qwen2VisionConfig: Codable, Sendable, Equatable {
    public var depth = 32
    public var embedDim = 1280
    /// The language model's width, the PatchMerger's output.
    public var hiddenSize = 3584
    public var hiddenAct: HiddenActivation = .quickGelu
    public var mlpRatio: Double = 4
    public var numHeads = 16
    public var inChannels = 3
    public var patchSize = 14
    public var spatialMergeSize = 2
    public var temporalPatchSize = 2
    public var ropeTheta: Float = 10000

    public init(depth: Int = 32, embedDim: Int = 1280, hiddenSize: Int = 3584, hiddenAct: HiddenActivation = .quickGelu,
                mlpRatio: Double = 4, numHeads: Int = 16, inChannels: Int = 3, patchSize: Int = 14,
                spatialMergeSize: Int = 2, temporalPatchSize: Int = 2, ropeTheta: Float = 10000) {
        (self.depth, self.embedDim, self.hiddenSize, self.hiddenAct, self.mlpRatio, self.numHeads) =
            (depth, embedDim, hiddenSize, hiddenAct, mlpRatio, numHeads)
        (self.inChannels, self.patchSize, self.spatialMergeSize, self.temporalPatchSize, self.ropeTheta) =
            (inChannels, patchSize, spatialMergeSize, temporalPatchSize, ropeTheta)
    }

    /// Floats per row of `pixel_values`: C · T · P · P.
    public var patchValues: Int { inChannels * temporalPatchSize * patchSize * patchSize }
    /// The MLP width of a block: embed_dim · mlp_ratio (HF truncates with `int()`).
    public var mlpWidth: Int { Int(Double(embedDim) * mlpRatio) }
    /// The PatchMerger's inner width: embed_dim · spatial_merge_size².
    public var mergedWidth: Int { embedDim * spatialMergeSize * spatialMergeSize }

    func validate() throws {
        for (key, value) in [("depth", depth), ("embed_dim", embedDim), ("hidden_size", hiddenSize), ("num_heads", numHeads),
                             ("in_channels", inChannels), ("patch_size", patchSize), ("spatial_merge_size", spatialMergeSize),
                             ("temporal_patch_size", temporalPatchSize), ("mlp_ratio", mlpWidth)] where value <= 0 {
            throw ModelError.invalidConfig(key: key, reason: "must be positive, got \(value)")
        }
        guard embedDim % numHeads == 0, (embedDim / numHeads) % 4 == 0 else {
            throw ModelError.invalidConfig(key: "num_heads", reason: "embed_dim \(embedDim) / num_heads \(numHeads) must be a multiple of 4 (2D rotary)")
        }
        guard ropeTheta > 0, ropeTheta.isFinite else {
            throw ModelError.invalidConfig(key: "rope_parameters.rope_theta", reason: "must be positive, got \(ropeTheta)")
        }
    }

    enum CodingKeys: String, CodingKey {
        case depth, embedDim, hiddenSize, hiddenAct, mlpRatio, numHeads, inChannels, patchSize, spatialMergeSize, temporalPatchSize
        case ropeParameters
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: FlexibleKey.self)
        depth = try c.value("depth") ?? depth
        embedDim = try c.value("embed_dim") ?? embedDim
        hiddenSize = try c.value("hidden_size") ?? hiddenSize
        if let act: String = try c.value("hidden_act") { hiddenAct = try HiddenActivation(key: "hidden_act", value: act) }
        mlpRatio = try c.value("mlp_ratio") ?? mlpRatio
        numHeads = try c.value("num_heads") ?? numHeads
        inChannels = try c.value("in_channels") ?? c.value("in_chans") ?? inChannels
        patchSize = try c.value("patch_size") ?? patchSize
        spatialMergeSize = try c.value("spatial_merge_size") ?? spatialMergeSize
        temporalPatchSize = try c.value("temporal_patch_size") ?? temporalPatchSize
        if let rope = try c.nested("rope_parameters"), let theta: Float = try rope.value("rope_theta") { ropeTheta = theta }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(depth, forKey: .depth)
        try c.encode(embedDim, forKey: .embedDim)
        try c.encode(hiddenSize, forKey: .hiddenSize)
        try c.encode(hiddenAct, forKey: .hiddenAct)
        try c.encode(mlpRatio, forKey: .mlpRatio)
        try c.encode(numHeads, forKey: .numHeads)
        try c.encode(inChannels, forKey: .inChannels)
        try c.encode(patchSize, forKey: .patchSize)
        try c.encode(spatialMergeSize, forKey: .spatialMergeSize)
        try c.encode(temporalPatchSize, forKey: .temporalPatchSize)
        var rope = c.nestedContainer(keyedBy: FlexibleKey.self, forKey: .ropeParameters)
        try rope.encode(ropeTheta, forKey: FlexibleKey(camel("rope_theta")))
    }
}

/// A coding key for configs read either as written (snake_case) or through
/// `.convertFromSnakeCase` (camelCase): lookups try both spellings.
struct FlexibleKey: CodingKey {
    let stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// `rope_theta` → `ropeTheta` (what `.convertFromSnakeCase` makes of a key).
func camel(_ snake: String) -> String {
    let parts = snake.split(separator: "_")
    return parts.enumerated().map { $0.offset == 0 ? String($0.element) : $0.element.prefix(1).uppercased() + $0.element.dropFirst() }.joined()
}

extension KeyedDecodingContainer where Key == FlexibleKey {
    /// The value under `snake` or its camelCase form; nil when absent or null.
    func value<T: Decodable>(_ snake: String) throws -> T? {
        for name in [snake, camel(snake)] {
            let key = FlexibleKey(name)
            if contains(key), try !decodeNil(forKey: key) { return try decode(T.self, forKey: key) }
        }
        return nil
    }

    func nested(_ snake: String) throws -> KeyedDecodingContainer<FlexibleKey>? {
        for name in [snake, camel(snake)] {
            let key = FlexibleKey(name)
            if contains(key), try !decodeNil(forKey: key) { return try nestedContainer(keyedBy: FlexibleKey.self, forKey: key) }
        }
        return nil
    }
}
