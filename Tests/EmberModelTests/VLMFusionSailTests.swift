import EmberContract
import Foundation
import Testing
@testable import EmberModel

/// The SAIL-style tiny model through the engine against our PyTorch reference
/// (`Ops/reference/qwen2vl_tiny.py` `sail`: transformers' vision tower and decoder modules,
/// sail_parts.py's perceiver and adapter, Ember's Whisper reference; fp32): audio chunks,
/// a perceiver per frame, bidirectional attention, tanh-mean pooling, records at 32 of 64/32/16.
@Suite("VLM fusion (SAIL-style tiny model)", .enabled(if: qwen2vlTinyAvailable, "needs Ops/model-fetch qwen2vl-tiny (Ops/test runs it)"))
struct VLMFusionSailTests {
    @Test("text + 2 frames + 15 s of audio, 3 s of audio alone, text alone: ids and pooled vectors match the reference")
    func sailModel() throws {
        let reference = try VLMReference(qwen2vlTiny)
        let texts = try JSONDecoder().decode([String?].self, from: Data(try #require(reference.file.metadata["texts"]).utf8))
        let engine = try EmbeddingEngine(modelDirectory: qwen2vlTinySail, threads: 2)
        let model = try #require(engine.fused)
        #expect(model.config.attention == .bidirectional && model.config.pooling == .tanhMean && model.dims == 32)
        #expect(model.tokensPerFrame == 3 && model.frameGrid == nil && model.order == [.audio, .vision, .text])
        var inputs: [ItemInput] = []
        for (i, text) in [texts[0], nil, texts[1]].enumerated() {
            let frames = reference.shape("sail.\(i).frames"), mel = reference.shape("sail.\(i).mel")
            inputs.append(ItemInput(
                text: text,
                frames: frames[0] == 0 ? nil : FrameBatch(size: frames[2], count: frames[0], values: try reference.floats("sail.\(i).frames")),
                logMel: mel[1] == 0 ? nil : LogMel(bins: mel[0], frames: mel[1], values: try reference.floats("sail.\(i).mel"))))
        }
        let results = try engine.embed(inputs)
        for (i, input) in inputs.enumerated() {
            let chunks = ((input.logMel?.frames ?? 0) + 999) / 1000
            let sequence = model.prompt.sequence(order: model.order, audioChunks: chunks, frames: input.frames?.count ?? 0,
                                                 tokensPerFrame: 3, grid: nil, text: model.textIDs(input.text))
            #expect(sequence.ids == (try reference.ids("sail.\(i).ids")), "item \(i) ids")
            expectClose(results[i].vector, try reference.floats("sail.\(i).embedding"), "SAIL item \(i)")
            #expect(results[i].vector.count == 32 && results[i].matryoshka == 32)
            #expect(abs(results[i].modalities.audioSeconds - Double(input.logMel?.frames ?? 0) / 100) < 1e-9)
        }
    }

    @Test("the whole SAIL-style model in bf16 stays within cosine 0.999 of fp32 (AVX512-BF16 CPUs; elsewhere bf16 is refused)")
    func bf16WholeModel() throws {
        guard ComputePrecision.bf16Available else {
            #expect(throws: ModelError.self) { try EmbeddingEngine(modelDirectory: qwen2vlTinySail, precision: .bf16) }
            return
        }
        let reference = try VLMReference(qwen2vlTiny)
        let frames = reference.shape("sail.0.frames"), mel = reference.shape("sail.0.mel")
        let input = ItemInput(text: "A cat opens the fridge", frames: FrameBatch(size: frames[2], count: frames[0], values: try reference.floats("sail.0.frames")),
                              logMel: LogMel(bins: mel[0], frames: mel[1], values: try reference.floats("sail.0.mel")))
        let fp32 = try EmbeddingEngine(modelDirectory: qwen2vlTinySail).embed([input])[0].vector
        let bf16 = try EmbeddingEngine(modelDirectory: qwen2vlTinySail, precision: .bf16).embed([input])[0].vector
        #expect(Comparison(bf16, fp32).cosine >= 0.999, "\(Comparison(bf16, fp32))")
    }
}
