import EmberMedia
import EmberModel
import EmberPipeline
import Foundation
import Logging
import Testing
@testable import ember

/// `asr.enabled` in the worker's processor, with omni-small's real weights and an
/// espeak-ng clip: the transcript enters the text block exactly where the event's own
/// `asr_text` would, and the record says Ember made it.
@Suite("Speech transcription in the worker's processor")
struct SpeechTranscriptionTests {
    @Test("a transcript gives the vector of an event that carried it as asr_text; records carry asr_text, asr_language, asr_generated")
    func transcriptIsTheEventsASRText() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ember-asr-worker-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let wav = folder.appendingPathComponent("speech.wav").path
        try BenchASR.tool(["espeak-ng", "-v", "en-us", "-s", "150", "-w", folder.appendingPathComponent("raw.wav").path,
                   "Please subscribe to my channel for more cooking videos."])
        try BenchASR.tool(["ffmpeg", "-v", "error", "-i", folder.appendingPathComponent("raw.wav").path, "-ac", "1", "-ar", "16000", wav])

        let engine = try EmbeddingEngine(modelDirectory: .defaultModelDirectory)
        var media = MediaConfiguration()
        media.uriPolicy = URIPolicy(mediaRoot: folder.path, blockPrivateAddresses: false)
        let plain = try MediaModelProcessor(engine: engine, media: media)
        var withSpeech = plain
        withSpeech.speech = SpeechTranscription(
            transcriber: try SpeechTranscriber(modelDirectory: .defaultModelDirectory, manifest: engine.manifest, encoder: try #require(engine.audio)),
            threads: 1, logger: Logger(label: "test"))

        let event = UploadEvent(itemID: "spoken", videoURI: wav, title: "Dinner tonight", tags: ["food"])
        let transcribed = try #require(try withSpeech.embed([withSpeech.prepare(event)]).first).get()
        let transcript = try #require(transcribed.transcript, "the clip holds speech")
        #expect(transcript.language == "en")
        #expect(WordErrorRate.words(transcript.text, reference: "Please subscribe to my channel for more cooking videos.") <= 0.5, "\(transcript.text)")

        // The same event carrying the transcript as asr_text, without ASR: the same vector, bit for bit.
        var carried = event
        carried.asrText = transcript.text
        let expected = try #require(try plain.embed([plain.prepare(carried)]).first).get()
        #expect(transcribed.vector == expected.vector)
        #expect(transcribed.modalities == expected.modalities)
        #expect(expected.transcript == nil)
        // Without the transcript the vector differs (the text block changed).
        let without = try #require(try plain.embed([plain.prepare(event)]).first).get()
        #expect(without.vector != transcribed.vector)
        #expect(without.modalities.textTokens < transcribed.modalities.textTokens)
        // An event that carries asr_text is not transcribed: its own text is embedded.
        let own = try #require(try withSpeech.embed([withSpeech.prepare(carried)]).first).get()
        #expect(own.transcript == nil && own.vector == expected.vector)

        var record = EmbeddingRecord(itemID: event.itemID, model: engine.modelID, vector: transcribed.vector, dtype: .float32,
                                     modalities: transcribed.modalities, source: nil, uploadedAt: nil, embeddedAt: Date())
        record.attach(transcribed.transcript)
        let json = try JSONSerialization.jsonObject(with: Data(try record.jsonBytes())) as? [String: Any]
        #expect(json?["asr_text"] as? String == transcript.text)
        #expect(json?["asr_language"] as? String == "en")
        #expect(json?["asr_generated"] as? Bool == true)
        let decoded = try EmbeddingRecord(protobuf: try record.protobufBytes())
        #expect(decoded.asrText == transcript.text && decoded.asrLanguage == "en" && decoded.asrGenerated == true)
    }
}
