import EmberModel
import Foundation
import Testing
import EmberPipeline

/// `AppliedHead` without the model: what the worker does to a fused vector, and what
/// it refuses at start-up.
@Suite("Applied projection head")
struct AppliedHeadTests {
    func head(base: String = "omni-small@abc") throws -> ProjectionHead {
        var g = SeededGenerator(seed: 8)
        let layers = ProjectionHead.Layers.linear
        let tensors = layers.tensorShapes(input: 16, output: 8).map { s in (0..<s.shape.reduce(1, *)).map { _ in Float(g.unit() - 0.5) } }
        return try ProjectionHead.make(layers: layers, inputDim: 16, outputDim: 8, matryoshka: [8, 4], tensors: tensors, name: "align", baseModel: base)
    }

    @Test("the vector becomes head(raw) at the size, normalized; the raw vector is kept when asked")
    func apply() throws {
        let head = try head()
        let applied = try AppliedHead(head: head, dims: 4, keepRaw: true, modelID: "omni-small@abc", modelDim: 16)
        let raw = unitVector(16, seed: 4)
        var item = EmbeddedItem(vector: raw, modalities: .init(visionFrames: 0, textTokens: 3, audioSeconds: 0))
        applied.apply(to: &item, engineModelID: "omni-small@abc")
        let y = Array(head.forward(raw, rows: 1).prefix(4))
        let norm = y.reduce(0) { $0 + $1 * $1 }.squareRoot()
        #expect(zip(item.vector, y.map { $0 / norm }).allSatisfy { abs($0 - $1) < 1e-6 })
        #expect(item.matryoshka == 4 && item.raw == RawVector(model: "omni-small@abc", vector: raw))
        #expect(applied.modelID == "omni-small+align@\(head.metadata.hash)")
        let largest = try AppliedHead(head: head, dims: 0, keepRaw: false, modelID: "omni-small@abc", modelDim: 16)
        var other = EmbeddedItem(vector: raw, modalities: item.modalities)
        largest.apply(to: &other, engineModelID: "omni-small@abc")
        #expect(largest.dims == 8 && other.vector.count == 8 && other.raw == nil)
    }

    @Test("a head of another model, another input size or an untrained size is refused")
    func refused() throws {
        let head = try head()
        #expect(throws: HeadSetupError.self) { try AppliedHead(head: head, dims: nil, keepRaw: false, modelID: "omni-small@def", modelDim: 16) }
        #expect(throws: HeadSetupError.self) { try AppliedHead(head: head, dims: nil, keepRaw: false, modelID: "omni-small@abc", modelDim: 2048) }
        #expect(throws: HeadSetupError.self) { try AppliedHead(head: head, dims: 5, keepRaw: false, modelID: "omni-small@abc", modelDim: 16) }
        // The same weights computed in bf16 (or a bf16-trained head on an fp32 worker) are the same model.
        let bf16 = try AppliedHead(head: head, dims: 4, keepRaw: false, modelID: "omni-small@abc+bf16", modelDim: 16)
        #expect(bf16.dims == 4)
        #expect(throws: HeadSetupError.self) { try AppliedHead(head: head, dims: nil, keepRaw: false, modelID: "omni-small@def+bf16", modelDim: 16) }
        #expect(ModelIdentity.weights(of: "omni-small@abc+bf16") == "omni-small@abc")
        #expect(ModelIdentity.weights(of: "omni-small+align@0f1e") == "omni-small+align@0f1e")
    }

    @Test("an altered head file is refused by its hash")
    func alteredFile() throws {
        let url = FileManager.default.temporaryDirectory.appending(path: "head-\(UUID()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try head().write(to: url)
        var bytes = try Data(contentsOf: url)
        bytes[bytes.count - 1] ^= 0x40  // the last weight's top byte
        try bytes.write(to: url)
        do {
            _ = try ProjectionHead(contentsOf: url)
            Issue.record("an altered head loaded")
        } catch {
            #expect(error.reason.contains("does not match the contents"), "\(error)")
        }
    }
}
