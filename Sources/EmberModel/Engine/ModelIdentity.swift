/// Model ids name the weights (`omni-small@<weights hash>`) and, after them, how the
/// vectors were computed (`+bf16`). A consumer can tell the two precisions apart, but a
/// head or a codebook is trained for weights: vectors of the same weights agree to
/// cosine ≥ 0.9999 across precisions (README, "Embedding engine", Precision), so a head trained on
/// fp32 records serves a bf16 worker and the other way round — a fleet whose CPUs differ
/// under `model.precision: auto` keeps one head and one codebook.
public enum ModelIdentity {
    /// Appended to the weights' id when the engine computes in bf16.
    public static let bf16Suffix = "+bf16"

    /// The weights' id of a record's `model`: without its precision suffix.
    public static func weights(of modelID: String) -> String {
        modelID.hasSuffix(bf16Suffix) ? String(modelID.dropLast(bf16Suffix.count)) : modelID
    }

    /// Whether two model ids name the same weights, whatever their precision.
    public static func sameWeights(_ a: String, _ b: String) -> Bool { weights(of: a) == weights(of: b) }
}
