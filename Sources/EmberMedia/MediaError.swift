import EmberContract

/// The one error EmberMedia throws. `failureClass` is one of the media dead-letter
/// classes (`forbidden_uri`, `media_unavailable`, `media_invalid`, `media_too_large`;
/// DESIGN.md "Topics and messages"); `isTransient` tells the pipeline whether a retry
/// with backoff can help (timeouts, refused connections, HTTP 5xx) or the item should
/// go to the dead-letter topic now (404, invalid data, limits).
public struct MediaError: Error, Sendable, Equatable, CustomStringConvertible {
    public let failureClass: FailureClass
    /// One line, safe to put in the `ember-error-message` dead-letter header.
    public let message: String
    /// True when retrying the same URI later may succeed.
    public let isTransient: Bool

    public init(_ failureClass: FailureClass, _ message: String, transient: Bool = false) {
        self.failureClass = failureClass
        self.message = message
        self.isTransient = transient
    }

    public var description: String { "\(failureClass.rawValue)\(isTransient ? " (transient)" : ""): \(message)" }

    static func forbidden(_ message: String) -> MediaError { MediaError(.forbiddenURI, message) }
    static func invalid(_ message: String) -> MediaError { MediaError(.mediaInvalid, message) }
    static func tooLarge(_ message: String) -> MediaError { MediaError(.mediaTooLarge, message) }
}
