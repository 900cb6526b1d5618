import EmberMedia
import EmberModel

/// A failure of one item. Permanent failures are dead-lettered with this class and
/// message; transient ones (a fetch timeout) are retried with backoff first.
public struct ItemFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public var failureClass: FailureClass
    public var message: String
    public var isTransient: Bool

    public init(_ failureClass: FailureClass, _ message: String, isTransient: Bool = false) {
        self.failureClass = failureClass
        self.message = message
        self.isTransient = isTransient
    }

    public var description: String { "\(failureClass.rawValue): \(message)" }
}

extension ItemFailure {
    /// A media failure keeps its dead-letter class and whether a retry may help.
    public init(_ error: MediaError) {
        self.init(error.failureClass, error.message, isTransient: error.isTransient)
    }

    /// A model failure: `no_content` for an item with nothing to embed, else `model_error`.
    public init(_ error: ModelError) {
        self.init(error.failureClass, "\(error)")
    }
}
