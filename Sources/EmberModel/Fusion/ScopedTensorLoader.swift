/// Strict loading of one part of a combined checkpoint (`visual.`, `perceiver.`,
/// `audio_adapter.` in one file next to the language model's tensors): every tensor the part
/// asks for must exist with the expected shape, and every tensor under its prefix must be
/// asked for. Tensors outside the prefix belong to other parts and are not this loader's
/// business (the caller that owns the whole file checks those).
struct ScopedTensorLoader {
    let file: SafeTensorsFile
    let prefix: String
    private(set) var taken: Set<String> = []

    init(_ file: SafeTensorsFile, prefix: String) {
        self.file = file
        self.prefix = prefix
    }

    /// The tensor `prefix + name`, widened to Float and checked against `shape`.
    mutating func take(_ name: String, _ shape: [Int]) throws -> [Float] {
        taken.insert(prefix + name)
        return try file.floats(prefix + name, shape: shape)
    }

    /// Throws `unexpectedTensors` when the file holds tensors under the prefix that the part did not ask for.
    func finish() throws {
        let extra = file.entries.keys.filter { $0.hasPrefix(prefix) && !taken.contains($0) }.sorted()
        if !extra.isEmpty { throw ModelError.unexpectedTensors(extra) }
    }
}
