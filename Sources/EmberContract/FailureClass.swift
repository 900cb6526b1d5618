/// Why an item went to the dead-letter topic: the one vocabulary for failures, shared
/// by media (which throws the media classes), the model (`modelError`) and the pipeline
/// (which writes the raw value as the `ember-error-class` header, DESIGN.md).
public enum FailureClass: String, Sendable, Hashable, CaseIterable, Codable {
    /// Not JSON, not an object, too large, a field of the wrong type, or a bad `item_id`.
    case invalidEvent = "invalid_event"
    /// Nothing the model can embed: no video, cover or text in the event, or media that
    /// gave the model no frame and no audio.
    case noContent = "no_content"
    /// A media URI the policy does not allow; nothing was opened.
    case forbiddenURI = "forbidden_uri"
    /// The media could not be fetched: missing file, HTTP error, timeout, network
    /// (after retries for transient failures).
    case mediaUnavailable = "media_unavailable"
    /// The bytes are not decodable media Ember accepts.
    case mediaInvalid = "media_invalid"
    /// A configured limit was exceeded: bytes, duration or pixels per frame.
    case mediaTooLarge = "media_too_large"
    /// The model failed on this item.
    case modelError = "model_error"
    /// The broker refused the item's output record for good (too large, not
    /// authorized, unknown topic): sending it again cannot succeed.
    case outputRejected = "output_rejected"
}
