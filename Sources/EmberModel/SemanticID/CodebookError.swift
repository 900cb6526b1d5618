/// What can go wrong training, reading or using a semantic-ID codebook.
public enum CodebookError: Error, Equatable, CustomStringConvertible {
    /// The training data or options cannot make a codebook.
    case invalidTraining(String)
    /// A codebook file that is not one, or is damaged.
    case invalidFile(path: String, reason: String)
    /// The codebook was trained on another model's embeddings: its codes would be noise.
    case modelMismatch(codebook: String, model: String)
    /// A vector whose size is not the codebook's.
    case dimensionMismatch(got: Int, expected: Int)

    public var description: String {
        switch self {
        case let .invalidTraining(reason): "cannot train a codebook: \(reason)"
        case let .invalidFile(path, reason): "\(path) is not a usable codebook: \(reason)"
        case let .modelMismatch(codebook, model):
            "the codebook was trained for model \(codebook), but the model is \(model); train one for this model (ember codebook train)"
        case let .dimensionMismatch(got, expected): "vector of \(got) dims, the codebook expects \(expected)"
        }
    }
}
