import Foundation

/// A codebook on disk: one safetensors file, tensor `level.<l>` of shape (K_l, dim) in
/// F32 per level, and `__metadata__` with what it is for and how it was trained.
/// Equal codebooks give equal bytes (no timestamps; metadata keys sorted).
///
/// | metadata key | value |
/// |---|---|
/// | `format` / `format_version` | `ember-codebook` / `1` |
/// | `model` | the model id the embeddings came from (`omni-small@<hash>`) |
/// | `dim`, `levels`, `sizes` | vector size, level count, codes per level (`256,256,256`) |
/// | `items`, `seed`, `balanced`, `iterations`, `repairs` | training data and options |
/// | `mse`, `relative_error`, `perplexity`, `collision_share` | training statistics |
extension Codebook {
    public static let fileFormat = "ember-codebook"
    public static let fileFormatVersion = 1

    public func write(to url: URL) throws {
        let s = statistics
        let metadata: [String: String] = [
            "format": Self.fileFormat, "format_version": "\(Self.fileFormatVersion)",
            "model": modelID, "dim": "\(dim)", "levels": "\(levels.count)", "sizes": Self.list(sizes),
            "items": "\(s.items)", "seed": "\(s.seed)", "balanced": "\(s.balanced)",
            "iterations": Self.list(s.iterations), "repairs": Self.list(s.repairs),
            "mse": "\(s.meanSquaredError)", "relative_error": "\(s.relativeError)",
            "perplexity": Self.list(s.perplexity), "collision_share": "\(s.collisionShare)",
        ]
        try writeSafeTensors(
            levels.enumerated().map { (name: "level.\($0.offset)", shape: [$0.element.count / dim, dim], values: $0.element) },
            metadata: metadata, to: url)
    }

    /// Reads a codebook file; every problem names the file and what is wrong.
    public init(contentsOf url: URL) throws(CodebookError) {
        let path = url.path
        func bad(_ reason: String) -> CodebookError { .invalidFile(path: path, reason: reason) }
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(path: path) } catch { throw bad("\(error)") }
        let m = file.metadata
        guard m["format"] == Self.fileFormat else { throw bad("metadata format is \(m["format"] ?? "absent"), expected \(Self.fileFormat)") }
        guard m["format_version"] == "\(Self.fileFormatVersion)" else {
            throw bad("format version \(m["format_version"] ?? "absent") (this build reads \(Self.fileFormatVersion))")
        }
        guard let model = m["model"], !model.isEmpty else { throw bad("metadata has no model id") }
        guard let dim = m["dim"].flatMap(Int.init), dim > 0 else { throw bad("metadata dim is missing or not a positive integer") }
        guard let sizes = m["sizes"].flatMap(Self.ints), let levelCount = m["levels"].flatMap(Int.init), sizes.count == levelCount, levelCount > 0
        else { throw bad("metadata levels/sizes are missing or disagree") }
        var levels: [[Float]] = []
        for (l, k) in sizes.enumerated() {
            do { levels.append(try file.floats("level.\(l)", shape: [k, dim])) } catch { throw bad("\(error)") }
        }
        let extra = Set(file.names).subtracting((0..<levelCount).map { "level.\($0)" })
        guard extra.isEmpty else { throw bad("unexpected tensors \(extra.sorted())") }
        let statistics = CodebookStatistics(
            items: m["items"].flatMap(Int.init) ?? 0, seed: m["seed"].flatMap(UInt64.init) ?? 0,
            balanced: m["balanced"] == "true", iterations: m["iterations"].flatMap(Self.ints) ?? [],
            repairs: m["repairs"].flatMap(Self.ints) ?? [], meanSquaredError: m["mse"].flatMap(Double.init) ?? .nan,
            relativeError: m["relative_error"].flatMap(Double.init) ?? .nan,
            perplexity: m["perplexity"].map { $0.split(separator: ",").compactMap { Double($0) } } ?? [],
            collisionShare: m["collision_share"].flatMap(Double.init) ?? .nan)
        try self.init(modelID: model, dim: dim, levels: levels, statistics: statistics)
    }

    private static func list<T>(_ values: [T]) -> String { values.map { "\($0)" }.joined(separator: ",") }
    private static func ints(_ text: String) -> [Int]? {
        let parts = text.split(separator: ",").map { Int($0) }
        return parts.contains(nil) || parts.isEmpty ? nil : parts.compactMap { $0 }
    }
}
