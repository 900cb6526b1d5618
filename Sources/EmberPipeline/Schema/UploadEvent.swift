import Foundation

/// A "video uploaded" event as it arrives on the input topic (DESIGN.md "Topics and
/// messages"). Every field but `item_id` is optional; unknown fields are ignored.
public struct UploadEvent: Sendable, Equatable, Codable {
    public var itemID: String
    public var videoURI: String?
    public var coverURI: String?
    public var title: String?
    public var tags: [String]?
    public var ocrText: String?
    public var asrText: String?
    public var author: String?
    /// Passed through to the output record unchanged.
    public var uploadedAt: String?

    enum CodingKeys: String, CodingKey {
        case itemID = "item_id"
        case videoURI = "video_uri"
        case coverURI = "cover_uri"
        case title, tags
        case ocrText = "ocr_text"
        case asrText = "asr_text"
        case author
        case uploadedAt = "uploaded_at"
    }

    public init(
        itemID: String, videoURI: String? = nil, coverURI: String? = nil, title: String? = nil,
        tags: [String]? = nil, ocrText: String? = nil, asrText: String? = nil, author: String? = nil,
        uploadedAt: String? = nil
    ) {
        self.itemID = itemID
        self.videoURI = videoURI
        self.coverURI = coverURI
        self.title = title
        self.tags = tags
        self.ocrText = ocrText
        self.asrText = asrText
        self.author = author
        self.uploadedAt = uploadedAt
    }

    /// Largest accepted event, in bytes.
    public static let maximumSize = 1 << 20
    /// `item_id` length bounds, in characters.
    public static let itemIDLength = 1...128
    /// Longest `item_id` in UTF-8 bytes. A character may hold any number of combining
    /// marks, so the character count alone lets a 1 MB key through.
    public static let itemIDMaximumBytes = 512

    /// Parses and validates one event. Throws `invalid_event` for anything malformed
    /// and `no_content` for a well-formed event with nothing to embed.
    public static func parse(_ bytes: [UInt8]) throws(ItemFailure) -> UploadEvent {
        guard bytes.count <= maximumSize else {
            throw ItemFailure(.invalidEvent, "event is \(bytes.count) bytes; the limit is \(maximumSize)")
        }
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw ItemFailure(.invalidEvent, "event is not valid UTF-8")
        }
        let event: UploadEvent
        do {
            event = try JSONDecoder().decode(UploadEvent.self, from: Data(bytes))
        } catch let error as DecodingError {
            throw ItemFailure(.invalidEvent, describe(error))
        } catch {
            throw ItemFailure(.invalidEvent, "event is not valid JSON: \(error)")
        }
        guard itemIDLength.contains(event.itemID.count) else {
            throw ItemFailure(.invalidEvent, "item_id must be 1 to 128 characters, got \(event.itemID.count)")
        }
        guard event.itemID.utf8.count <= itemIDMaximumBytes else {
            throw ItemFailure(.invalidEvent, "item_id must be at most \(itemIDMaximumBytes) bytes of UTF-8, got \(event.itemID.utf8.count)")
        }
        guard event.itemID.unicodeScalars.allSatisfy({ !CharacterSet.controlCharacters.contains($0) }) else {
            throw ItemFailure(.invalidEvent, "item_id contains control characters")
        }
        guard event.hasContent else {
            throw ItemFailure(.noContent, "event has no video_uri, cover_uri or text to embed")
        }
        return event
    }

    /// The text the text tower embeds: the fields joined in order of how much they
    /// say about the video (title, tags, author, speech, on-screen text). The tower
    /// truncates to its maximum length, so the least telling fields are cut first.
    public var text: String? {
        var parts: [String] = []
        func add(_ value: String?) {
            if let value = value?.trimmingCharacters(in: .whitespacesAndNewlines), !value.isEmpty { parts.append(value) }
        }
        add(title)
        add(tags?.filter { !$0.isEmpty }.map { "#" + $0 }.joined(separator: " "))
        add(author)
        add(asrText)
        add(ocrText)
        return parts.isEmpty ? nil : parts.joined(separator: "\n")
    }

    private static func nonEmpty(_ value: String?) -> Bool {
        value.map { !$0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty } ?? false
    }

    /// True when at least one modality can be embedded.
    public var hasContent: Bool {
        Self.nonEmpty(videoURI) || Self.nonEmpty(coverURI) || text != nil
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
            return path.isEmpty ? "event" : path
        }
        switch error {
        case .keyNotFound(let key, _): return "missing required field \(key.stringValue)"
        case .typeMismatch(let type, let context):
            return context.codingPath.isEmpty ? "event is not a JSON object" : "\(path(context)) must be \(typeName(type))"
        case .valueNotFound(let type, let context): return "\(path(context)) must be \(typeName(type)), got null"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "event is not a JSON object" : "\(path(context)) is malformed"
        @unknown default: return "event is malformed"
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is [String].Type, is [Any].Type: "an array of strings"
        default: "\(type)"
        }
    }
}
