import EmberContract
import Foundation
import Testing
@testable import EmberModel

/// The SAIL audio adapter against Ops/reference/sail_parts.py on Fixtures/qwen2-vl.
@Suite("Audio adapter parity")
struct AudioAdapterTests {
    let fixture: Qwen2VLFixture

    init() throws { fixture = try Qwen2VLFixture() }

    @Test("one token per chunk embedding matches the PyTorch reference")
    func parity() throws {
        let adapter = try AudioAdapter(weights: fixture.weights, config: fixture.audioAdapter)
        let chunks = try fixture.reference.floats("audio_chunks", shape: [3, 32])
        let out = try adapter.encode(chunks: (0..<3).map { Array(chunks[$0 * 32 ..< ($0 + 1) * 32]) }, arena: ScratchArena())
        expectClose(out.flatMap { $0 }, try fixture.reference.floats("audio_tokens", shape: [3, 48]), "audio adapter")
    }

    @Test("log-mel is cut into chunks of whole frames, the last one shorter")
    func chunking() {
        let mel = LogMel(bins: 2, frames: 5, values: [0, 1, 2, 3, 4, 10, 11, 12, 13, 14])
        let chunks = AudioAdapter.chunks(of: mel, frames: 2)
        #expect(chunks == [LogMel(bins: 2, frames: 2, values: [0, 1, 10, 11]), LogMel(bins: 2, frames: 2, values: [2, 3, 12, 13]),
                           LogMel(bins: 2, frames: 1, values: [4, 14])])
    }

    @Test("a tower of another width, bad chunks and bad tensors are typed errors")
    func errors() throws {
        let adapter = try AudioAdapter(weights: fixture.weights, config: fixture.audioAdapter)
        #expect(throws: ModelError.invalidInput("audio chunk embedding 1 has 31 values, the adapter takes input_size 32")) {
            try adapter.encode(chunks: [[Float](repeating: 0, count: 32), [Float](repeating: 0, count: 31)], arena: ScratchArena())
        }
        let misshaped = try rewrittenSafeTensors(fixture.weights, "adapter-shape") { $0["audio_adapter.2.bias"]!.shape = [1, 48] }
        #expect(throws: ModelError.shapeMismatch(tensor: "audio_adapter.2.bias", got: [1, 48], expected: [48])) {
            try AudioAdapter(weights: misshaped, config: fixture.audioAdapter)
        }
        let missing = try rewrittenSafeTensors(fixture.weights, "adapter-missing") { $0["audio_adapter.0.weight"] = nil }
        #expect(throws: ModelError.missingTensor("audio_adapter.0.weight")) { try AudioAdapter(weights: missing, config: fixture.audioAdapter) }
    }
}
