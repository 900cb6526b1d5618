import Foundation
import Testing
@testable import EmberModel

/// Parity with the PyTorch references on the committed tiny random-weight model
/// (Fixtures/tiny, made by Ops/reference/make_tiny_fixtures.py; fixture version 1).
@Suite("Tiny random-weight parity")
struct TinyParityTests {
    let manifest: ModelManifest
    let reference: SafeTensorsFile

    init() throws {
        manifest = try ModelManifest.load(directory: tinyModel)
        reference = try SafeTensorsFile(path: tinyModel.appendingPathComponent("reference.safetensors").path)
        #expect(reference.metadata["fixture_version"] == "1")
    }

    func file(_ name: String) throws -> SafeTensorsFile { try SafeTensorsFile(path: tinyModel.appendingPathComponent(name).path) }

    @Test("WordPiece ids equal the Hugging Face BertTokenizer's")
    func tokenizer() throws {
        let texts = try JSONDecoder().decode([String].self, from: Data(contentsOf: tinyModel.appendingPathComponent("texts.json")))
        let tokenizer = try WordPieceTokenizer(vocabularyFile: tinyModel.appendingPathComponent("vocab.txt"), config: manifest.towers.text!.tokenizer!)
        for (i, text) in texts.enumerated() {
            let expected = try reference.int64s("text.\(i).ids")
            #expect(tokenizer.encode(text).map(Int64.init) == expected, "\(text)")
        }
    }

    @Test("BERT hidden states and pooled embeddings match transformers")
    func bert() throws {
        let text = manifest.towers.text!
        let bert = try BertEncoder(weights: try file(text.weights), config: text.config!)
        var sequences: [[Int32]] = []
        for i in 0..<4 { sequences.append(try reference.int64s("text.\(i).ids").map { Int32($0) }) }
        let states = try bert.hiddenStates(sequences, arena: ScratchArena())
        var start = 0
        for (i, sequence) in sequences.enumerated() {
            let count = sequence.count * text.config!.hiddenSize
            expectClose(Array(states[start..<(start + count)]), try reference.floats("text.\(i).states"), "text \(i) states")
            start += count
        }
        for (i, embedding) in try bert.embed(sequences, arena: ScratchArena()).enumerated() {
            expectClose(embedding, try reference.floats("text.\(i).embedding"), "text \(i) embedding")
        }
    }

    @Test("EfficientNet-Lite features and logits match efficientnet_lite_pytorch (BN folded by the converter)")
    func efficientNet() throws {
        let vision = manifest.towers.vision!
        let net = try EfficientNetLite(weights: try file(vision.weights), config: vision.config!)
        let frames = try reference.floats("vision.frames")
        let features = try net.features(FrameBatch(size: vision.preprocessing.size, count: 3, values: frames), arena: ScratchArena())
        expectClose(features, try reference.floats("vision.features"), "vision features")
        expectClose(net.logits(features: features, count: 3) ?? [], try reference.floats("vision.logits"), "vision logits")
        // One frame alone gives the same features as inside the batch.
        let size = 3 * 33 * 33
        let single = try net.features(FrameBatch(size: 33, count: 1, values: Array(frames[size..<(2 * size)])), arena: ScratchArena())
        expectClose(single, Array(features[1280..<2560]), tolerance: 1e-5, minCosine: 0.999999, "single frame")
    }

    @Test("Whisper encoder states match transformers' layers on unpadded clips (odd, even, one frame)")
    func whisper() throws {
        let audio = manifest.towers.audio!
        let encoder = try WhisperEncoder(weights: try file(audio.weights), config: audio.config)
        var clips: [LogMel] = []
        for i in 0..<3 {
            let mel = try reference.floats("audio.\(i).mel")
            let frames = reference.entries["audio.\(i).mel"]!.shape[1]
            clips.append(LogMel(bins: 8, frames: frames, values: mel))
        }
        #expect(clips.map { encoder.positions(forFrames: $0.frames) } == [11, 5, 1])
        let packed = try encoder.hiddenStates(clips, arena: ScratchArena())
        var start = 0
        for (i, clip) in clips.enumerated() {
            let count = encoder.positions(forFrames: clip.frames) * audio.config.dModel
            expectClose(Array(packed[start..<(start + count)]), try reference.floats("audio.\(i).states"), "audio \(i) states")
            // Alone equals packed.
            expectClose(try encoder.hiddenStates([clip], arena: ScratchArena()), Array(packed[start..<(start + count)]), tolerance: 1e-5, "audio \(i) alone")
            start += count
        }
        #expect(throws: ModelError.self) { try encoder.hiddenStates([LogMel(bins: 8, frames: 40, values: [Float](repeating: 0, count: 320))], arena: ScratchArena()) }
        #expect(throws: ModelError.self) { try encoder.hiddenStates([LogMel(bins: 7, frames: 2, values: [Float](repeating: 0, count: 14))], arena: ScratchArena()) }
    }

    @Test("Whisper clips run whole on their own threads or together: 1–3 threads give each clip's states alone, bit for bit (fp32, and bf16 where the CPU has it)")
    func whisperScheduling() throws {
        let audio = manifest.towers.audio!
        // 5 clips: at 2 threads 4 run alone and 1 with both threads; at 3 threads 3 alone, 2 together.
        let frames = [21, 9, 1, 32, 16]
        let clips = frames.enumerated().map { i, t in LogMel(bins: 8, frames: t, values: pseudoRandom(8 * t, seed: 100 + UInt64(i))) }
        for precision in ComputePrecision.allCases where precision == .fp32 || ComputePrecision.bf16Available {
            let encoder = try WhisperEncoder(weights: try file(audio.weights), config: audio.config, precision: precision)
            let alone = try clips.map { try encoder.hiddenStates([$0], arena: ScratchArena()) }
            for threads in 1...3 {
                let packed = try encoder.hiddenStates(clips, arena: ScratchArena(), threads: threads)
                #expect(packed.count == alone.reduce(0) { $0 + $1.count })
                var start = 0
                for (i, states) in alone.enumerated() {
                    expectIdentical(Array(packed[start..<min(start + states.count, packed.count)]), states, "\(precision), \(threads) threads, clip \(i)")
                    start += states.count
                }
            }
            // One clip with more threads than clips shares each layer among them.
            expectIdentical(try encoder.hiddenStates([clips[3]], arena: ScratchArena(), threads: 2), alone[3], "\(precision), one clip on 2 threads")
        }
    }

    @Test("loading fails with got/expected shapes on a mis-shaped tensor, and on missing ones")
    func strictLoading() throws {
        var text = manifest.towers.text!.config!
        text.intermediateSize = 48
        #expect(throws: ModelError.shapeMismatch(tensor: "encoder.layer.0.intermediate.dense.weight", got: [64, 32], expected: [48, 32])) {
            try BertEncoder(weights: try file("text.safetensors"), config: text)
        }
        var audio = manifest.towers.audio!.config
        audio.encoderLayers = 3
        #expect(throws: ModelError.missingTensor("encoder/layer_2/self_attention/layer_norm/gamma")) {
            try WhisperEncoder(weights: try file("audio.safetensors"), config: audio)
        }
        var vision = manifest.towers.vision!.config!
        vision.blocks.removeLast()
        #expect(throws: ModelError.self) { try EfficientNetLite(weights: try file("vision.safetensors"), config: vision) }
    }
}

@Suite("Embedding engine")
struct EngineTests {
    let engine: EmbeddingEngine
    let reference: SafeTensorsFile

    init() throws {
        engine = try EmbeddingEngine(modelDirectory: tinyModel)
        reference = try SafeTensorsFile(path: tinyModel.appendingPathComponent("reference.safetensors").path)
    }

    func items() throws -> [ItemInput] {
        let frames = try reference.floats("vision.frames")
        let size = 3 * 33 * 33
        let frame = { (i: Int) in Array(frames[(i * size)..<((i + 1) * size)]) }
        let batch = { (indices: [Int]) in FrameBatch(size: 33, count: indices.count, values: indices.flatMap(frame)) }
        let mel = { (i: Int) throws -> LogMel in
            LogMel(bins: 8, frames: self.reference.entries["audio.\(i).mel"]!.shape[1], values: try self.reference.floats("audio.\(i).mel"))
        }
        return [
            ItemInput(text: "the cat sat on the mat.", frames: batch([0, 1]), logMel: try mel(0)),
            ItemInput(text: "Hello, World!"),
            ItemInput(frames: batch([2])),
            ItemInput(logMel: try mel(1)),
            ItemInput(text: "playing dogs ran", logMel: try mel(2)),
        ]
    }

    @Test("fused vectors follow the reference towers and the manifest's weights")
    func fusedAgainstReference() throws {
        let result = try engine.embed(try items())
        #expect(result.count == 5)
        #expect(result.allSatisfy { $0.vector.count == 1344 })
        // Item 0: text 0, mean of frames 0 and 1, audio clip 0; weights text 1, vision 0.5, audio 2.
        let features = try reference.floats("vision.features")
        var vision = (0..<1280).map { (features[$0] + features[1280 + $0]) / 2 }
        l2Normalize(&vision)
        let statesCount = 11 * 32
        let states = try reference.floats("audio.0.states")
        var audio = [Float](repeating: 0, count: 32)
        for p in 0..<11 { for c in 0..<32 { audio[c] += states[p * 32 + c] / 11 } }
        l2Normalize(&audio)
        #expect(states.count == statesCount)
        var expected = try reference.floats("text.0.embedding") + vision.map { $0 * 0.5 } + audio.map { $0 * 2 }
        l2Normalize(&expected)
        expectClose(result[0].vector, expected, "item 0 fused")
        #expect(result[0].modalities == ModalityCounts(visionFrames: 2, textTokens: 9, audioSeconds: 0.21))
        // Absent towers are zero blocks.
        #expect(result[1].vector[32...].allSatisfy { $0 == 0 })
        #expect(result[2].vector[..<32].allSatisfy { $0 == 0 } && result[2].vector[1312...].allSatisfy { $0 == 0 })
        for item in result {
            let norm = item.vector.reduce(0) { $0 + $1 * $1 }.squareRoot()
            #expect(abs(norm - 1) < 1e-5)
        }
    }

    @Test("a batch gives the same vectors as items one by one")
    func batchedEqualsSingle() throws {
        let inputs = try items()
        let batched = try engine.embed(inputs)
        for (i, input) in inputs.enumerated() {
            let single = try engine.embed([input])[0]
            expectClose(single.vector, batched[i].vector, tolerance: 1e-6, minCosine: 0.9999999, "item \(i)")
            #expect(single.modalities == batched[i].modalities)
        }
    }

    @Test("a bad item fails alone; the rest of the batch is embedded")
    func perItemResults() throws {
        let good = try items()
        let nan = [Float](repeating: .nan, count: 3 * 33 * 33)
        let batch = [good[0], ItemInput(), good[1], ItemInput(frames: FrameBatch(size: 2, count: 1, values: [Float](repeating: 0, count: 12))),
                     ItemInput(text: "x", frames: FrameBatch(size: 33, count: 1, values: nan)),
                     ItemInput(logMel: LogMel(bins: 8, frames: 3, values: [1])), good[2]]
        let results = engine.embedEach(batch)
        #expect(results.count == 7)
        let expected = try engine.embed([good[0], good[1], good[2]])
        for (index, reference) in zip([0, 2, 6], expected) {
            expectClose(try results[index].get().vector, reference.vector, tolerance: 1e-6, minCosine: 0.9999999, "item \(index)")
        }
        let messages = [1, 3, 4, 5].map { i -> String in
            if case let .failure(error) = results[i] { return error.description }
            return "succeeded"
        }
        #expect(messages == [
            "no text, frames or audio the model can use",
            "invalid input: frames are 3×2×2, the vision tower reads 3×33×33",
            "invalid input: the embedding is not finite (NaN or infinity in the frames or log-mel?)",
            "invalid input: log-mel must be 8×T with 1 ≤ T ≤ 32, got 8×3 with 1 values",
        ])
    }

    @Test("micro-batches split into passes by token, frame and position budgets")
    func passes() throws {
        #expect(EmbeddingEngine.passes([], budget: 10) == [])
        #expect(EmbeddingEngine.passes([3, 4, 3, 1], budget: 10) == [0..<3, 3..<4])
        #expect(EmbeddingEngine.passes([12, 2, 8, 9], budget: 10) == [0..<1, 1..<3, 3..<4])
        // Nine frames take three CNN passes and equal the frames one at a time.
        let vision = try #require(engine.vision)
        let frames = try reference.floats("vision.frames")
        let size = 3 * 33 * 33
        let nine = (0..<9).map { i in Array(frames[((i % 3) * size)..<((i % 3 + 1) * size)]).map { $0 * Float(1 + i / 3) } }
        let arena = ScratchArena()
        let batched = try vision.features(FrameBatch(size: 33, count: 9, values: nine.flatMap { $0 }), arena: arena)
        for (i, frame) in nine.enumerated() {
            expectClose(try vision.features(FrameBatch(size: 33, count: 1, values: frame), arena: ScratchArena()), Array(batched[(i * 1280)..<((i + 1) * 1280)]),
                        tolerance: 1e-5, minCosine: 0.999999, "frame \(i)")
        }
        #expect(arena.capacity == vision.scratchFloats(frames: 4, size: 33) && arena.growths == 1)
    }

    @Test("bad items are errors, not crashes; f16 output is half the bytes")
    func errorsAndDTypes() throws {
        #expect(throws: ModelError.noContent("no text, frames or audio the model can use")) { try engine.embed([ItemInput()]) }
        #expect(ModelError.noContent("x").failureClass == .noContent && ModelError.invalidInput("x").failureClass == .modelError)
        #expect(throws: ModelError.self) { try engine.embed([ItemInput(frames: FrameBatch(size: 1, count: 1, values: [1, 2, 3]))]) }
        #expect(throws: ModelError.self) { try engine.embed([ItemInput(logMel: LogMel(bins: 80, frames: 1, values: [Float](repeating: 0, count: 80)))]) }
        // The window (32 frames here: window_seconds 0.32; 30 s for Whisper) is cut where
        // audio is decoded; a longer log-mel is a caller's error, not silently truncated.
        #expect(throws: ModelError.self) { try engine.embed([ItemInput(logMel: LogMel(bins: 8, frames: 33, values: pseudoRandom(264, seed: 5)))]) }
        let full = try engine.embed([ItemInput(logMel: LogMel(bins: 8, frames: 32, values: pseudoRandom(256, seed: 5)))])[0]
        #expect(full.modalities.audioSeconds == 0.32)
        #expect(try engine.embed([]).isEmpty)
        let nan = [Float](repeating: .nan, count: 3 * 33 * 33)
        #expect(throws: ModelError.invalidInput("the embedding is not finite (NaN or infinity in the frames or log-mel?)")) {
            try engine.embed([ItemInput(text: "a"), ItemInput(text: "b", frames: FrameBatch(size: 33, count: 1, values: nan))])
        }
        let item = try engine.embed([ItemInput(text: "a b c")])[0]
        let f32 = item.bytes(.float32), f16 = item.bytes(.float16)
        #expect(f32.count == 1344 * 4 && f16.count == 1344 * 2)
        let first = f16.withUnsafeBytes { Float(Float16(bitPattern: UInt16(littleEndian: $0.load(as: UInt16.self)))) }
        #expect(abs(first - item.vector[0]) < 1e-3)
        #expect(engine.modelID.hasPrefix("tiny-omni@"))
    }
}
