/// Why an event went to the dead-letter topic. The raw values are the
/// `ember-error-class` header values of DESIGN.md.
public enum FailureClass: String, Sendable, CaseIterable, Codable {
    /// Not JSON, not an object, too large, a field of the wrong type, or a bad `item_id`.
    case invalidEvent = "invalid_event"
    /// A valid event with no usable modality (no video, no cover, no text).
    case noContent = "no_content"
    /// A media URI the policy does not allow.
    case forbiddenURI = "forbidden_uri"
    /// The media could not be fetched (after retries for transient failures).
    case mediaUnavailable = "media_unavailable"
    /// The media could not be decoded.
    case mediaInvalid = "media_invalid"
    /// The media exceeds a configured limit (bytes, duration, pixels).
    case mediaTooLarge = "media_too_large"
    /// The model failed on this item.
    case modelError = "model_error"
    /// The broker refused the item's output record for good (too large, not
    /// authorized, unknown topic): sending it again cannot succeed.
    case outputRejected = "output_rejected"
}

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
