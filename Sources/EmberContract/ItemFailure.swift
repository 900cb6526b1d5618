/// Why one item could not be embedded: the error EmberMedia throws and the pipeline
/// dead-letters, one value from fetch to dead letter. `message` is one line, safe for the
/// `ember-error-message` header; `isTransient` says whether a retry with backoff can help
/// (timeouts, refused connections, HTTP 5xx) or the item goes to the dead-letter topic now.
public struct ItemFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public var failureClass: FailureClass
    public var message: String
    public var isTransient: Bool

    public init(_ failureClass: FailureClass, _ message: String, isTransient: Bool = false) {
        self.failureClass = failureClass
        self.message = message
        self.isTransient = isTransient
    }

    public var description: String { "\(failureClass.rawValue)\(isTransient ? " (transient)" : ""): \(message)" }
}
