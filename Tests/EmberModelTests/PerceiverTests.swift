import Foundation
import Testing
@testable import EmberModel

/// The SAIL perceiver against Ops/reference/sail_parts.py on Fixtures/qwen2-vl.
@Suite("Perceiver parity")
struct PerceiverTests {
    let fixture: Qwen2VLFixture

    init() throws { fixture = try Qwen2VLFixture() }

    /// The fixture's per-frame vision tokens (4, 4 and 6 rows of 64), the perceiver's input.
    func frames() throws -> [[Float]] {
        let tokens = try fixture.reference.floats("vision_tokens", shape: [14, 64])
        return [Array(tokens[0..<256]), Array(tokens[256..<512]), Array(tokens[512...])]
    }

    @Test("query tokens per frame match the PyTorch reference", arguments: [1, 2])
    func parity(threads: Int) throws {
        let perceiver = try Perceiver(weights: fixture.weights, config: fixture.perceiver)
        let out = try perceiver.encode(frames: try frames(), arena: ScratchArena(), threads: threads)
        #expect(out.map(\.count) == [4 * 48, 4 * 48, 4 * 48])
        expectClose(out.flatMap { $0 }, try fixture.reference.floats("perceiver_tokens", shape: [12, 48]), "perceiver, \(threads) threads")
        // Each frame attends only to itself: alone it gives the same tokens (up to GEMM rounding).
        expectClose(try perceiver.encode(frames: [try frames()[2]], arena: ScratchArena())[0], out[2], tolerance: 1e-5, "single frame vs batched")
    }

    @Test("bf16 query tokens stay within cosine 0.999 of fp32", .enabled(if: ComputePrecision.bf16Available, "needs AVX512-BF16"))
    func bf16() throws {
        let perceiver = try Perceiver(weights: fixture.weights, config: fixture.perceiver, precision: .bf16)
        let out = try perceiver.encode(frames: try frames(), arena: ScratchArena(), threads: 2).flatMap { $0 }
        let comparison = Comparison(out, try fixture.reference.floats("perceiver_tokens"))
        #expect(comparison.cosine >= 0.999 && comparison.maxAbsDiff > 0, "bf16 perceiver: \(comparison)")
    }

    @Test("bad inputs, tensors and configs are typed errors")
    func errors() throws {
        let perceiver = try Perceiver(weights: fixture.weights, config: fixture.perceiver)
        #expect(throws: ModelError.invalidInput("perceiver frame 0 has 10 values, expected a positive multiple of hidden_size 64")) {
            try perceiver.encode(frames: [[Float](repeating: 0, count: 10)], arena: ScratchArena())
        }
        #expect(try perceiver.encode(frames: [], arena: ScratchArena()).isEmpty)
        let missing = try rewrittenSafeTensors(fixture.weights, "perceiver-missing") { $0["perceiver.queries"] = nil }
        #expect(throws: ModelError.missingTensor("perceiver.queries")) { try Perceiver(weights: missing, config: fixture.perceiver) }
        var more = fixture.perceiver
        more.numQueries = 16
        #expect(throws: ModelError.shapeMismatch(tensor: "perceiver.queries", got: [4, 64], expected: [16, 64])) {
            try Perceiver(weights: fixture.weights, config: more)
        }
        var shallow = fixture.perceiver
        shallow.depth = 1
        #expect(throws: ModelError.self) { try Perceiver(weights: fixture.weights, config: shallow) }  // blocks.1.* left over
        #expect(throws: ModelError.invalidConfig(key: "num_heads", reason: "missing")) {
            try JSONDecoder().decode(PerceiverConfig.self, from: Data(#"{"hidden_size": 64, "output_size": 48}"#.utf8))
        }
    }
}
