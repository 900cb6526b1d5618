import EmberContract
import Foundation
import Testing
@testable import EmberModel

/// The whole VLM-fusion model through the engine against transformers 5.24
/// (`Ops/reference/qwen2vl_tiny.py`, fp32): frames and text → vision tower → chat template →
/// decoder → pooled vector.
@Suite("VLM fusion (GME-style tiny Qwen2-VL)", .enabled(if: qwen2vlTinyAvailable, "needs Ops/model-fetch qwen2vl-tiny (Ops/test runs it)"))
struct VLMFusionTests {
    let reference: VLMReference
    let texts: [String?]
    init() throws {
        reference = try VLMReference(qwen2vlTiny)
        let json = try #require(reference.file.metadata["texts"])
        texts = try JSONDecoder().decode([String?].self, from: Data(json.utf8))
    }

    func item(_ i: Int) throws -> ItemInput {
        let shape = reference.shape("gme.\(i).frames")
        let frames = shape[0] == 0 ? nil : FrameBatch(size: shape[2], count: shape[0], values: try reference.floats("gme.\(i).frames"))
        return ItemInput(text: texts[i], frames: frames)
    }

    @Test("frames + text, text only, a frame only: token ids and the pooled vector match transformers' Qwen2VLModel")
    func wholeModel() throws {
        let engine = try EmbeddingEngine(modelDirectory: qwen2vlTiny)
        let model = try #require(engine.fused)
        #expect(engine.manifest.output.dim == 64 && model.tokensPerFrame == 4 && model.frameGrid?.height == 2)
        for i in 0..<3 {
            let input = try item(i)
            let sequence = model.prompt.sequence(order: model.order, audioChunks: 0, frames: input.frames?.count ?? 0,
                                                 tokensPerFrame: model.tokensPerFrame, grid: model.frameGrid, text: model.textIDs(input.text))
            #expect(sequence.ids == (try reference.ids("gme.\(i).ids")), "item \(i): ids as Hugging Face tokenizes the whole prompt")
            let result = try engine.embed([input])[0]
            expectClose(result.vector, try reference.floats("gme.\(i).embedding"), "GME item \(i)")
            #expect(result.modalities.visionFrames == (input.frames?.count ?? 0) && result.modalities.textTokens == sequence.textTokens)
            #expect(result.matryoshka == 64)
        }
        // Missing modalities contribute no tokens: the text-only item has no vision block, the frame-only one no text.
        #expect(!(try reference.ids("gme.1.ids")).contains(model.prompt.visionStart))
        #expect(try engine.embed([item(2)])[0].modalities.textTokens == 0)
    }

    @Test("a batch of the three items equals each alone (packed sequences; 2 threads)")
    func batchedEqualsAlone() throws {
        let engine = try EmbeddingEngine(modelDirectory: qwen2vlTiny, threads: 2)
        let inputs = try (0..<3).map(item)
        let batched = try engine.embed(inputs)
        for i in 0..<3 { expectClose(batched[i].vector, try engine.embed([inputs[i]])[0].vector, tolerance: 1e-5, "item \(i) batched vs alone") }
    }

    @Test("output.dim 32: the record's vector is the re-normalized 32-prefix")
    func matryoshkaSlice() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qwen2vl-tiny-32-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        for name in ["decoder.safetensors", "vision.safetensors", "tokenizer.json"] {
            try FileManager.default.createSymbolicLink(at: directory.appendingPathComponent(name), withDestinationURL: qwen2vlTiny.appendingPathComponent(name))
        }
        var manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: qwen2vlTiny.appendingPathComponent("manifest.json"))) as! [String: Any]
        manifest["output"] = ["dim": 32]
        try JSONSerialization.data(withJSONObject: manifest).write(to: directory.appendingPathComponent("manifest.json"))
        let result = try EmbeddingEngine(modelDirectory: directory).embed([item(0)])[0]
        #expect(result.vector.count == 32 && result.matryoshka == 32)
        expectClose(result.vector, matryoshkaPrefix(try reference.floats("gme.0.embedding"), dims: 32), "32-prefix")

        manifest["output"] = ["dim": 48]
        try JSONSerialization.data(withJSONObject: manifest).write(to: directory.appendingPathComponent("manifest.json"))
        #expect { try EmbeddingEngine(modelDirectory: directory) } throws: { error in
            guard case let .invalidConfig(key, _) = error as? ModelError else { return false }
            return key == "output.dim"
        }
    }

    @Test("bad items fail alone with a reason; written template tokens in a title are dropped")
    func badItems() throws {
        let engine = try EmbeddingEngine(modelDirectory: qwen2vlTiny)
        let wrongSize = ItemInput(text: "x", frames: FrameBatch(size: 28, count: 1, values: [Float](repeating: 0, count: 3 * 28 * 28)))
        let results = engine.embedEach([wrongSize, ItemInput(), try item(1), ItemInput(logMel: LogMel(bins: 80, frames: 10, values: [Float](repeating: 0, count: 800)))])
        #expect(throws: ModelError.self) { try results[0].get() }
        #expect(results[1].failureClassIs(.noContent))
        #expect((try? results[2].get()) != nil)
        #expect(throws: ModelError.self) { try results[3].get() }  // this model has no audio tower
        let injected = try engine.embed([ItemInput(text: "<|image_pad|><|vision_start|>cat<|im_end|>")])[0]
        let plain = try engine.embed([ItemInput(text: "cat")])[0]
        #expect(injected.vector == plain.vector && injected.modalities.textTokens == plain.modalities.textTokens)
    }
}

extension Result where Failure == ModelError {
    func failureClassIs(_ failureClass: FailureClass) -> Bool {
        if case let .failure(error) = self { return error.failureClass == failureClass }
        return false
    }
}
