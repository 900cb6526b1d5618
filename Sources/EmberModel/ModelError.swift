import EmberContract

/// Everything that can go wrong loading a model or embedding an item. Never a crash:
/// bad files and bad inputs come back as one of these, with names and shapes.
public enum ModelError: Error, Equatable, CustomStringConvertible {
    case fileUnreadable(path: String, reason: String)
    case truncatedFile(path: String, expectedBytes: Int, actualBytes: Int)
    case invalidHeader(path: String, reason: String)
    case unsupportedDType(tensor: String, dtype: String)
    case missingTensor(String)
    case unexpectedTensors([String])
    case shapeMismatch(tensor: String, got: [Int], expected: [Int])
    case invalidConfig(key: String, reason: String)
    case unsupportedFormat(found: Int, supported: Int)
    case invalidInput(String)
    /// The item gives the model nothing to embed (no text, frames or audio).
    case noContent(String)

    /// The dead-letter class of this failure: `no_content` for an empty item, otherwise
    /// `model_error`.
    public var failureClass: FailureClass {
        if case .noContent = self { return .noContent }
        return .modelError
    }

    public var description: String {
        switch self {
        case let .fileUnreadable(path, reason): "cannot read \(path): \(reason)"
        case let .truncatedFile(path, expected, actual):
            "\(path) is truncated: expected at least \(expected) bytes, file has \(actual)"
        case let .invalidHeader(path, reason): "\(path): invalid safetensors header: \(reason)"
        case let .unsupportedDType(tensor, dtype): "tensor \(tensor) has unsupported dtype \(dtype)"
        case let .missingTensor(name): "missing tensor \(name)"
        case let .unexpectedTensors(names): "unexpected tensors: \(names.prefix(5).joined(separator: ", "))"
        case let .shapeMismatch(tensor, got, expected): "tensor \(tensor) has shape \(got), expected \(expected)"
        case let .invalidConfig(key, reason): "invalid model config \(key): \(reason)"
        case let .unsupportedFormat(found, supported):
            "model directory format \(found) is not supported (this build reads format \(supported)); re-run Ops/model-fetch"
        case let .invalidInput(reason): "invalid input: \(reason)"
        case let .noContent(reason): reason
        }
    }
}
