import EmberContract

/// EmberMedia throws `ItemFailure` (the contract's failure value) with one of the media
/// classes: `forbidden_uri`, `media_unavailable`, `media_invalid`, `media_too_large`.
extension ItemFailure {
    static func forbidden(_ message: String) -> ItemFailure { ItemFailure(.forbiddenURI, message) }
    static func invalid(_ message: String) -> ItemFailure { ItemFailure(.mediaInvalid, message) }
    static func tooLarge(_ message: String) -> ItemFailure { ItemFailure(.mediaTooLarge, message) }
}
