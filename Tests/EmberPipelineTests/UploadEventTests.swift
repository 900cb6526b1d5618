import Testing
@testable import EmberPipeline

@Suite("Upload events")
struct UploadEventTests {
    private func parse(_ json: String) throws(ItemFailure) -> UploadEvent {
        try UploadEvent.parse(Array(json.utf8))
    }

    private func failure(_ json: String) -> ItemFailure? {
        do {
            _ = try parse(json)
            return nil
        } catch {
            return error
        }
    }

    @Test("a full event parses, unknown fields are ignored")
    func fullEvent() throws {
        let event = try parse("""
            { "item_id": "7312345678901234567", "video_uri": "https://media.example/v/abc.mp4",
              "cover_uri": "https://media.example/c/abc.jpg", "title": "Cat vs cucumber",
              "tags": ["cats", "funny"], "ocr_text": "WAIT FOR IT", "asr_text": "oh no", "author": "mia",
              "uploaded_at": "2026-11-28T10:00:00Z", "extra": {"nested": [1, 2]} }
            """)
        #expect(event.itemID == "7312345678901234567")
        #expect(event.videoURI == "https://media.example/v/abc.mp4")
        #expect(event.tags == ["cats", "funny"])
        #expect(event.uploadedAt == "2026-11-28T10:00:00Z")
        #expect(event.text == "Cat vs cucumber\n#cats #funny\nmia\noh no\nWAIT FOR IT")
    }

    @Test("null optional fields are absent")
    func nullFields() throws {
        let event = try parse(#"{"item_id":"1","title":"hello","video_uri":null,"tags":null}"#)
        #expect(event.videoURI == nil)
        #expect(event.text == "hello")
    }

    @Test("malformed events are invalid_event with a reason", arguments: [
        ("not json", "not a JSON object"),
        ("[1, 2]", "not a JSON object"),
        (#"{"title": "no id"}"#, "missing required field item_id"),
        (#"{"item_id": 7312345678901234567, "title": "x"}"#, "item_id must be a string"),
        (#"{"item_id": "", "title": "x"}"#, "item_id must be 1 to 128 characters"),
        (#"{"item_id": "a\u0000b", "title": "x"}"#, "control characters"),
        (#"{"item_id": "1", "tags": "cats"}"#, "tags must be an array of strings"),
        (#"{"item_id": "1", "tags": ["a", 3]}"#, "tags.[1] must be a string"),
    ])
    func malformed(json: String, reason: String) {
        let error = failure(json)
        #expect(error?.failureClass == .invalidEvent)
        #expect(error?.message.contains(reason) == true, "got \(String(describing: error))")
    }

    @Test("an over-long item_id is rejected, 128 characters are accepted")
    func itemIDLength() throws {
        #expect(failure(#"{"item_id":"\#(String(repeating: "x", count: 129))","title":"t"}"#)?.failureClass == .invalidEvent)
        #expect(try parse(#"{"item_id":"\#(String(repeating: "x", count: 128))","title":"t"}"#).itemID.count == 128)
    }

    @Test("an item_id of one character with 523,000 combining accents (1 MB) is rejected by its byte length")
    func itemIDBytes() throws {
        let heavy = "a" + String(repeating: "\u{0301}", count: 523_000)
        #expect(heavy.count == 1, "one grapheme cluster")
        let error = failure(#"{"item_id":"\#(heavy)","title":"t"}"#)
        #expect(error?.failureClass == .invalidEvent)
        #expect(error?.message.contains("bytes") == true, "\(String(describing: error))")
        // 128 four-byte characters are 512 bytes: still accepted.
        #expect(try parse(#"{"item_id":"\#(String(repeating: "😀", count: 128))","title":"t"}"#).itemID.count == 128)
    }

    @Test("events over 1 MiB are rejected before parsing")
    func oversized() {
        let padding = String(repeating: "a", count: UploadEvent.maximumSize)
        let error = failure(#"{"item_id":"1","title":"\#(padding)"}"#)
        #expect(error?.failureClass == .invalidEvent)
        #expect(error?.message.contains("limit") == true)
    }

    @Test("invalid UTF-8 is invalid_event")
    func invalidUTF8() {
        var bytes = Array(#"{"item_id":"1","title":"x"}"#.utf8)
        bytes[22] = 0xff
        #expect(throws: ItemFailure(.invalidEvent, "event is not valid UTF-8")) { try UploadEvent.parse(bytes) }
    }

    @Test("an event with nothing to embed is no_content", arguments: [
        #"{"item_id":"1"}"#,
        #"{"item_id":"1","title":"   ","tags":[],"video_uri":""}"#,
        #"{"item_id":"1","tags":["",""],"ocr_text":"\n"}"#,
    ])
    func noContent(json: String) {
        #expect(failure(json)?.failureClass == .noContent)
    }

    @Test("any single modality is enough", arguments: [
        #"{"item_id":"1","video_uri":"https://x/v.mp4"}"#,
        #"{"item_id":"1","cover_uri":"https://x/c.jpg"}"#,
        #"{"item_id":"1","tags":["cats"]}"#,
        #"{"item_id":"1","asr_text":"hello"}"#,
    ])
    func singleModality(json: String) throws {
        #expect(try parse(json).hasContent)
    }
}
