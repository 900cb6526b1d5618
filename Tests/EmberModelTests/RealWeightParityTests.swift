import Foundation
import Testing
@testable import EmberModel

/// The default model from real pretrained weights (Ops/model-fetch, which Ops/test runs),
/// against references from the PyTorch implementations on the original checkpoints
/// (Fixtures/real, made by Ops/reference/make_real_references.py; fixture version 1).
let realEngine = Result { try EmbeddingEngine(modelDirectory: .defaultModelDirectory, threads: 1) }
let realFixtures = fixtures.appendingPathComponent("real")

struct RealInputs: Decodable {
    var sentences: [String]
    var images: [String]
    var imageMean: Float
    var imageStd: Float
}

func loadRealEngine() throws -> EmbeddingEngine {
    do { return try realEngine.get() } catch {
        Issue.record("omni-small is not available at \(URL.defaultModelDirectory.path): \(error). Run Ops/model-fetch.")
        throw error
    }
}

/// Renders a lavfi source with the ffmpeg CLI as 224×224 RGB and normalizes it to CHW floats.
func renderFrame(_ source: String, mean: Float, std: Float) throws -> [Float] {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", source, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let raw = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0, raw.count == 224 * 224 * 3 else {
        throw ModelError.invalidInput("ffmpeg rendered \(raw.count) bytes for \(source)")
    }
    let preprocessing = ModelManifest.ImagePreprocessing(imageSize: 224, mean: [mean, mean, mean], std: [std, std, std])
    return try preprocessing.normalize(rgb: [UInt8](raw))
}

@Suite("Real-weight parity (omni-small)")
struct RealWeightParityTests {
    let reference: SafeTensorsFile
    let inputs: RealInputs

    init() throws {
        reference = try SafeTensorsFile(path: realFixtures.appendingPathComponent("reference.safetensors").path)
        #expect(reference.metadata["fixture_version"] == "1")
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

    @Test("MiniLM sentence embeddings match transformers + mean pooling (cosine ≥ 0.9999)")
    func text() throws {
        let engine = try loadRealEngine()
        let text = try #require(engine.text)
        let sequences = try (0..<inputs.sentences.count).map { try reference.int64s("text.\($0).ids").map { Int32($0) } }
        for (i, embedding) in try text.embed(sequences).enumerated() {
            expectClose(embedding, try reference.floats("text.\(i).embedding"), tolerance: 1e-4, minCosine: 0.9999, "sentence \(i)")
        }
        // Semantics survive: the two guitar sentences are closer to each other than to the fox.
        let e = try text.embed(Array(sequences.prefix(3)))
        let dot = { (a: [Float], b: [Float]) in zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
        #expect(dot(e[0], e[1]) > dot(e[0], e[2]) + 0.3)
    }

    @Test("EfficientNet-Lite0 gives the reference's top-5 ImageNet classes on ffmpeg-rendered images")
    func vision() throws {
        let engine = try loadRealEngine()
        let vision = try #require(engine.vision)
        let frames = try inputs.images.map { try renderFrame($0, mean: inputs.imageMean, std: inputs.imageStd) }
        let features = try vision.features(frames: frames.flatMap { $0 }, count: frames.count, size: 224)
        let logits = try #require(vision.logits(features: features, count: frames.count))
        for i in frames.indices {
            let row = Array(logits[(i * 1000)..<((i + 1) * 1000)])
            let top5 = row.indices.sorted { row[$0] > row[$1] }.prefix(5).map(Int64.init)
            let expectedTop5 = try reference.int64s("vision.\(i).top5")
            #expect(top5 == expectedTop5, "\(inputs.images[i])")
            expectClose(Array(features[(i * 1280)..<((i + 1) * 1280)]), try reference.floats("vision.\(i).features"),
                        tolerance: 1e-4, minCosine: 0.9999, "features \(i)")
            expectClose(row, try reference.floats("vision.\(i).logits"), tolerance: 1e-4, minCosine: 0.9999, "logits \(i)")
        }
    }

    @Test("Whisper tiny.en encoder states match torch on an espeak-ng clip, unpadded")
    func audio() throws {
        let engine = try loadRealEngine()
        let audio = try #require(engine.audio)
        let shape = try #require(reference.entries["audio.mel"]?.shape)
        let mel = LogMel(bins: shape[0], frames: shape[1], values: try reference.floats("audio.mel"))
        let states = try audio.hiddenStates([mel])
        #expect(states.count == audio.positions(forFrames: mel.frames) * 384)
        expectClose(states, try reference.floats("audio.states"), tolerance: 1e-4, minCosine: 0.9999, "encoder states")
    }

    @Test("a full item fuses to 2048 unit-norm dims; batched equals single")
    func engine() throws {
        let engine = try loadRealEngine()
        #expect(engine.manifest.output.dim == 2048 && engine.modelID.hasPrefix("omni-small@"))
        let shape = try #require(reference.entries["audio.mel"]?.shape)
        let mel = LogMel(bins: shape[0], frames: shape[1], values: try reference.floats("audio.mel"))
        let frame = try renderFrame(inputs.images[0], mean: inputs.imageMean, std: inputs.imageStd)
        let items = [ItemInput(text: inputs.sentences[0], frames: [frame, frame], logMel: mel), ItemInput(text: inputs.sentences[4])]
        let batched = try engine.embed(items)
        #expect(batched[0].vector.count == 2048)
        #expect(abs(batched[0].vector.reduce(0) { $0 + $1 * $1 } - 1) < 1e-4)
        #expect(batched[0].modalities.visionFrames == 2 && batched[0].modalities.textTokens == 12)
        #expect(abs(batched[0].modalities.audioSeconds - Double(shape[1]) / 100) < 1e-9)
        for (i, item) in items.enumerated() {
            expectClose(try engine.embed([item])[0].vector, batched[i].vector, tolerance: 1e-5, minCosine: 0.999999, "item \(i)")
        }
    }
}
