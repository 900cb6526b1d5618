import EmberMedia
import Foundation
import Testing
@testable import EmberModel

/// The default model from real pretrained weights (Ops/model-fetch, which Ops/test runs),
/// against references from the PyTorch implementations on the original checkpoints
/// (Fixtures/real, made by Ops/reference/make_real_references.py; fixture version 2).
/// Images and audio go through the production path: bytes → EmberMedia's front end built
/// from the manifest → EmberModel, the reference seeing the same decoded pixels and samples.
let realEngine = Result { try EmbeddingEngine(modelDirectory: .defaultModelDirectory) }
let realFixtures = fixtures.appendingPathComponent("real")

struct RealInputs: Decodable {
    var sentences: [String]
    var images: [String]
    var speech: String
}

func loadRealEngine() throws -> EmbeddingEngine {
    do { return try realEngine.get() } catch {
        Issue.record("omni-small is not available at \(URL.defaultModelDirectory.path): \(error). Run Ops/model-fetch.")
        throw error
    }
}

/// Runs a command line tool; throws with its stderr when it fails.
func run(_ arguments: [String]) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let errors = Pipe()
    process.standardError = errors
    try process.run()
    let message = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw ModelError.invalidInput("\(arguments[0]) failed: \(String(decoding: message, as: UTF8.self))")
    }
}

/// The production media front end of `engine`, reading files under `root`.
func productionFrontEnd(_ engine: EmbeddingEngine, root: URL) throws -> MediaFrontEnd {
    var media = MediaConfiguration()
    media.uriPolicy = URIPolicy(mediaRoot: root.path, blockPrivateAddresses: false)
    let towers = engine.manifest.towers
    return try MediaFrontEnd(vision: towers.vision?.preprocessing, audio: towers.audio?.preprocessing, media: media)
}

/// A scratch folder with the reference's inputs as files: each lavfi image as an RGB PNG
/// (`image-N.png`) and the speech clip as 16 kHz mono float WAV (`speech.wav`), made the
/// way make_real_references.py makes its pixels and samples.
func renderMediaFiles(_ inputs: RealInputs) throws -> URL {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ember-real-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    for (i, source) in inputs.images.enumerated() {
        try run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", source, "-frames:v", "1", "-pix_fmt", "rgb24",
                 folder.appendingPathComponent("image-\(i).png").path])
    }
    let speech = folder.appendingPathComponent("speech22k.wav").path
    try run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", speech, inputs.speech])
    try run(["ffmpeg", "-v", "error", "-i", speech, "-ac", "1", "-ar", "16000", "-c:a", "pcm_f32le",
             folder.appendingPathComponent("speech.wav").path])
    return folder
}

@Suite("Real-weight parity (omni-small)")
struct RealWeightParityTests {
    let reference: SafeTensorsFile
    let inputs: RealInputs

    init() throws {
        reference = try SafeTensorsFile(path: realFixtures.appendingPathComponent("reference.safetensors").path)
        #expect(reference.metadata["fixture_version"] == "2")
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        inputs = try decoder.decode(RealInputs.self, from: Data(contentsOf: realFixtures.appendingPathComponent("inputs.json")))
    }

    @Test("WordPiece ids equal the Hugging Face tokenizer's on English, accented, Chinese and over-long text")
    func tokenizer() throws {
        let tokenizer = try #require(try loadRealEngine().tokenizer)
        for (i, sentence) in inputs.sentences.enumerated() {
            let expected = try reference.int64s("text.\(i).ids")
            #expect(tokenizer.encode(sentence).map(Int64.init) == expected, "\(sentence)")
        }
        #expect(try reference.int64s("text.10.ids").count == 256)  // truncated to max_length
    }

    @Test("MiniLM sentence embeddings match transformers + mean pooling (cosine ≥ 0.9999)", arguments: [1, 2])
    func text(threads: Int) throws {
        let engine = try loadRealEngine()
        let text = try #require(engine.text)
        let sequences = try (0..<inputs.sentences.count).map { try reference.int64s("text.\($0).ids").map { Int32($0) } }
        for (i, embedding) in try text.embed(sequences, arena: ScratchArena(), threads: threads).enumerated() {
            expectClose(embedding, try reference.floats("text.\(i).embedding"), tolerance: 1e-4, minCosine: 0.9999, "sentence \(i)")
        }
        // Semantics survive: the two guitar sentences are closer to each other than to the fox.
        let e = try text.embed(Array(sequences.prefix(3)), arena: ScratchArena())
        let dot = { (a: [Float], b: [Float]) in zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
        #expect(dot(e[0], e[1]) > dot(e[0], e[2]) + 0.3)
    }

    @Test("PNG bytes → EmberMedia (manifest front end) → EfficientNet-Lite0 match torch on the same pixels; top-5 equal", arguments: [1, 2])
    func vision(threads: Int) throws {
        let engine = try loadRealEngine()
        let vision = try #require(engine.vision)
        let folder = try renderMediaFiles(inputs)
        defer { try? FileManager.default.removeItem(at: folder) }
        let frontEnd = try productionFrontEnd(engine, root: folder)
        for i in inputs.images.indices {
            let media = try frontEnd.prepare(videoURI: nil, coverURI: folder.appendingPathComponent("image-\(i).png").path)
            let frames = try #require(media.frames)
            #expect(frames.count == 1 && frames.size == 224)
            let features = try vision.features(frames, arena: ScratchArena(), threads: threads)
            let logits = try #require(vision.logits(features: features, count: 1))
            let top5 = logits.indices.sorted { logits[$0] > logits[$1] }.prefix(5).map(Int64.init)
            #expect(top5 == (try reference.int64s("vision.\(i).top5")), "\(inputs.images[i])")
            expectClose(features, try reference.floats("vision.\(i).features"), tolerance: 1e-4, minCosine: 0.99999, "features \(i)")
            expectClose(logits, try reference.floats("vision.\(i).logits"), tolerance: 1e-4, minCosine: 0.99999, "logits \(i)")
        }
    }

    @Test("Whisper tiny.en encoder states match torch on an espeak-ng clip, unpadded", arguments: [1, 2])
    func audio(threads: Int) throws {
        let engine = try loadRealEngine()
        let audio = try #require(engine.audio)
        let shape = try #require(reference.entries["audio.mel"]?.shape)
        let mel = LogMel(bins: shape[0], frames: shape[1], values: try reference.floats("audio.mel"))
        let states = try audio.hiddenStates([mel], arena: ScratchArena(), threads: threads)
        #expect(states.count == audio.positions(forFrames: mel.frames) * 384)
        expectClose(states, try reference.floats("audio.states"), tolerance: 1e-4, minCosine: 0.99999, "encoder states")
    }

    @Test("WAV bytes → EmberMedia (manifest front end) give the reference's log-mel, and its encoder states")
    func audioThroughMedia() throws {
        let engine = try loadRealEngine()
        let audio = try #require(engine.audio)
        let folder = try renderMediaFiles(inputs)
        defer { try? FileManager.default.removeItem(at: folder) }
        let media = try productionFrontEnd(engine, root: folder).prepare(videoURI: folder.appendingPathComponent("speech.wav").path, coverURI: nil)
        let mel = try #require(media.logMel)
        let shape = try #require(reference.entries["audio.mel"]?.shape)
        #expect(mel.bins == shape[0] && mel.frames == shape[1])
        expectClose(mel.values, try reference.floats("audio.mel"), tolerance: 1e-4, minCosine: 0.99999, "log-mel")
        let states = try audio.hiddenStates([mel], arena: ScratchArena())
        expectClose(states, try reference.floats("audio.states"), tolerance: 1e-4, minCosine: 0.99999, "encoder states from EmberMedia's log-mel")
    }

    @Test("bf16 mode: text and audio towers within cosine 0.999 of fp32, items within 0.999",
          .enabled(if: ComputePrecision.bf16Available, "needs AVX512-BF16"))
    func bf16Accuracy() throws {
        let engine = try loadRealEngine()
        let bf16 = try EmbeddingEngine(modelDirectory: .defaultModelDirectory, threads: 2, precision: .bf16)
        #expect(bf16.precision == .bf16)
        let sequences = try (0..<inputs.sentences.count).map { try reference.int64s("text.\($0).ids").map { Int32($0) } }
        let fp32Text = try engine.text!.embed(sequences, arena: ScratchArena())
        for (i, vector) in try bf16.text!.embed(sequences, arena: ScratchArena(), threads: 2).enumerated() {
            expectClose(vector, fp32Text[i], tolerance: 0.05, minCosine: 0.999, "bf16 sentence \(i)")
        }
        let shape = try #require(reference.entries["audio.mel"]?.shape)
        let mel = LogMel(bins: shape[0], frames: shape[1], values: try reference.floats("audio.mel"))
        let fp32Audio = try engine.audio!.pooled([mel], arena: ScratchArena())[0]
        expectClose(try bf16.audio!.pooled([mel], arena: ScratchArena(), threads: 2)[0], fp32Audio, tolerance: 0.05, minCosine: 0.999, "bf16 audio")
        let items = [ItemInput(text: inputs.sentences[0], logMel: mel), ItemInput(text: inputs.sentences[4])]
        for (ours, theirs) in zip(try bf16.embed(items), try engine.embed(items)) {
            expectClose(ours.vector, theirs.vector, tolerance: 0.05, minCosine: 0.999, "bf16 item")
        }
        // Batched equals single in bf16 too: each row's sums do not depend on the batch.
        for (i, item) in items.enumerated() {
            expectClose(try bf16.embed([item])[0].vector, try bf16.embed(items)[i].vector, tolerance: 1e-5, minCosine: 0.999999, "bf16 item \(i)")
        }
    }

    @Test("a full item fuses to 2048 unit-norm dims; batched equals single")
    func engine() throws {
        let engine = try loadRealEngine()
        #expect(engine.manifest.output.dim == 2048 && engine.modelID.hasPrefix("omni-small@"))
        let shape = try #require(reference.entries["audio.mel"]?.shape)
        let mel = LogMel(bins: shape[0], frames: shape[1], values: try reference.floats("audio.mel"))
        let folder = try renderMediaFiles(inputs)
        defer { try? FileManager.default.removeItem(at: folder) }
        let cover = try productionFrontEnd(engine, root: folder).prepare(videoURI: nil, coverURI: folder.appendingPathComponent("image-0.png").path)
        let frame = try #require(cover.frames)
        let frames = FrameBatch(size: frame.size, count: 2, values: frame.values + frame.values)
        let items = [ItemInput(text: inputs.sentences[0], frames: frames, logMel: mel), ItemInput(text: inputs.sentences[4])]
        let batched = try engine.embed(items)
        #expect(batched[0].vector.count == 2048)
        #expect(abs(batched[0].vector.reduce(0) { $0 + $1 * $1 } - 1) < 1e-4)
        #expect(batched[0].modalities.visionFrames == 2 && batched[0].modalities.textTokens == 12)
        #expect(abs(batched[0].modalities.audioSeconds - Double(shape[1]) / 100) < 1e-9)
        for (i, item) in items.enumerated() {
            expectClose(try engine.embed([item])[0].vector, batched[i].vector, tolerance: 1e-5, minCosine: 0.999999, "item \(i)")
        }
        // An engine whose calls use two threads gives the same vectors, bit for bit: every
        // kernel splits work whose values do not depend on the split.
        let twoThreads = try EmbeddingEngine(modelDirectory: .defaultModelDirectory, threads: 2)
        for (i, item) in try twoThreads.embed(items).enumerated() {
            #expect(item.vector == batched[i].vector, "item \(i) with 2 engine threads")
        }
        // Per call, as the worker's lanes ask (one lane's thread, or an idle lane's too): the
        // same bits, and a request above the engine's threads is capped, not an error.
        for threads in [1, 2, 8] {
            for (i, result) in twoThreads.embedEach(items, threads: threads).enumerated() {
                #expect(try result.get().vector == batched[i].vector, "item \(i), a call on \(threads) thread(s)")
            }
        }
    }
}
