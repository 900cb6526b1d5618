/// The one error EmberMedia throws. `errorClass` is the dead-letter class of
/// DESIGN.md ("Topics and messages"); `isTransient` tells the pipeline whether a
/// retry with backoff can help (timeouts, refused connections, HTTP 5xx) or the
/// item should go to the dead-letter topic now (404, invalid data, limits).
public struct MediaError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, CaseIterable {
        /// The URI's scheme, host, address or path is not allowed; nothing was opened.
        case forbiddenURI = "forbidden_uri"
        /// The media could not be fetched: missing file, HTTP error, timeout, network.
        case mediaUnavailable = "media_unavailable"
        /// The bytes are not decodable media Ember accepts.
        case mediaInvalid = "media_invalid"
        /// A configured limit was exceeded: bytes, duration or pixels per frame.
        case mediaTooLarge = "media_too_large"
    }

    public let kind: Kind
    /// One line, safe to put in the `ember-error-message` dead-letter header.
    public let message: String
    /// True when retrying the same URI later may succeed.
    public let isTransient: Bool

    public init(_ kind: Kind, _ message: String, transient: Bool = false) {
        self.kind = kind
        self.message = message
        self.isTransient = transient
    }

    /// Exactly one of `forbidden_uri`, `media_unavailable`, `media_invalid`, `media_too_large`.
    public var errorClass: String { kind.rawValue }

    public var description: String { "\(errorClass)\(isTransient ? " (transient)" : ""): \(message)" }

    static func forbidden(_ message: String) -> MediaError { MediaError(.forbiddenURI, message) }
    static func invalid(_ message: String) -> MediaError { MediaError(.mediaInvalid, message) }
    static func tooLarge(_ message: String) -> MediaError { MediaError(.mediaTooLarge, message) }
}
