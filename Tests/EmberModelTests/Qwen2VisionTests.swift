import EmberContract
import Foundation
import Testing
@testable import EmberModel

/// The Qwen2-VL vision tower against transformers' own `Qwen2VisionTransformerPretrainedModel`
/// and its input layout against `Qwen2VLImageProcessorPil`, on Fixtures/qwen2-vl.
@Suite("Qwen2-VL vision tower parity")
struct Qwen2VisionTests {
    let fixture: Qwen2VLFixture

    init() throws { fixture = try Qwen2VLFixture() }

    @Test("patchify gives the image processor's pixel_values and image_grid_thw")
    func patchLayout() throws {
        let image = try fixture.image(2)  // 56×84: a non-square 4×6 grid
        let patches = try Qwen2VisionPatches(images: [image.values], height: image.height, width: image.width, config: fixture.vision)
        #expect(patches.grids == [Qwen2VisionGrid(t: 1, h: 4, w: 6)])
        let grids = try fixture.reference.int64s("image_grid_thw")
        #expect(grids == [1, 4, 4, 1, 4, 4, 1, 4, 6])
        expectClose(patches.values, try fixture.reference.floats("pixel_values_2", shape: [24, 1176]), tolerance: 1e-5, "pixel_values")
    }

    @Test("vision tokens of three packed images match transformers", arguments: [1, 2])
    func tower(threads: Int) throws {
        let tower = try Qwen2VisionTransformer(weights: fixture.weights, config: fixture.vision)
        let tokens = try tower.encode(try fixture.allPatches(), arena: ScratchArena(), threads: threads)
        #expect(tokens.map(\.count) == [4 * 64, 4 * 64, 6 * 64])
        expectClose(tokens.flatMap { $0 }, try fixture.reference.floats("vision_tokens", shape: [14, 64]), "vision tokens, \(threads) threads")
    }

    @Test("bf16 tokens stay within cosine 0.999 of fp32", .enabled(if: ComputePrecision.bf16Available, "needs AVX512-BF16"),
          arguments: [1, 2])
    func bf16(threads: Int) throws {
        let tower = try Qwen2VisionTransformer(weights: fixture.weights, config: fixture.vision, precision: .bf16)
        let tokens = try tower.encode(try fixture.allPatches(), arena: ScratchArena(), threads: threads).flatMap { $0 }
        let comparison = Comparison(tokens, try fixture.reference.floats("vision_tokens"))
        #expect(comparison.cosine >= 0.999 && comparison.maxAbsDiff > 0, "bf16 vision tokens: \(comparison)")
    }

    @Test("a FrameBatch of keyframes gives the same tokens as the processor's images")
    func frames() throws {
        let tower = try Qwen2VisionTransformer(weights: fixture.weights, config: fixture.vision)
        let batch = FrameBatch(size: 56, count: 2, values: try fixture.image(0).values + fixture.image(1).values)
        let arena = ScratchArena()
        let tokens = try tower.encode(frames: batch, arena: arena)
        expectClose(tokens.flatMap { $0 }, Array(try fixture.reference.floats("vision_tokens").prefix(8 * 64)), "frame tokens")
        // The arena was sized by the first pass: the same batch again needs no more scratch.
        let growths = arena.growths
        #expect(try tower.encode(frames: batch, arena: arena) == tokens)
        #expect(arena.growths == growths)
        // One frame alone: attention is per image, so packing changes its tokens only by
        // GEMM rounding (BLAS sums small products in an order that depends on the row count).
        let single = try tower.encode(frames: FrameBatch(size: 56, count: 1, values: try fixture.image(1).values), arena: ScratchArena())
        expectClose(single[0], tokens[1], tolerance: 1e-5, "single frame vs batched")
    }

    @Test("frames not a multiple of patch_size × merge_size are a typed error")
    func badFrameSize() throws {
        let tower = try Qwen2VisionTransformer(weights: fixture.weights, config: fixture.vision)
        #expect(throws: ModelError.invalidInput("images must be positive multiples of patch_size × spatial_merge_size = 28 on each side, got 42×42")) {
            try tower.encode(frames: FrameBatch(size: 42, count: 1, values: [Float](repeating: 0, count: 3 * 42 * 42)), arena: ScratchArena())
        }
        #expect(throws: ModelError.self) {
            try Qwen2VisionPatches(values: [1, 2, 3], grids: [Qwen2VisionGrid(t: 1, h: 2, w: 2)], config: fixture.vision)
        }
    }

    @Test("missing, mis-shaped and unknown tensors are typed errors naming the tensor")
    func loaderErrors() throws {
        let config = fixture.vision
        let missing = try rewrittenSafeTensors(fixture.weights, "qv-missing") { $0["visual.blocks.1.attn.qkv.bias"] = nil }
        #expect(throws: ModelError.missingTensor("visual.blocks.1.attn.qkv.bias")) { try Qwen2VisionTransformer(weights: missing, config: config) }
        let misshaped = try rewrittenSafeTensors(fixture.weights, "qv-shape") { $0["visual.merger.mlp.2.weight"]!.shape = [32, 256] }
        #expect(throws: ModelError.shapeMismatch(tensor: "visual.merger.mlp.2.weight", got: [32, 256], expected: [64, 128])) {
            try Qwen2VisionTransformer(weights: misshaped, config: config)
        }
        let unknown = try rewrittenSafeTensors(fixture.weights, "qv-extra") { $0["visual.blocks.2.norm1.weight"] = ([32], [Float](repeating: 1, count: 32)) }
        #expect(throws: ModelError.unexpectedTensors(["visual.blocks.2.norm1.weight"])) { try Qwen2VisionTransformer(weights: unknown, config: config) }
        // Tensors of other parts in the same file (perceiver., audio_adapter.) are not the tower's business.
        _ = try Qwen2VisionTransformer(weights: fixture.weights, config: config)
    }

    @Test("vision_config decodes as Hugging Face writes it, original Qwen2-VL keys included")
    func config() throws {
        #expect(fixture.vision == Qwen2VisionConfig(depth: 2, embedDim: 32, hiddenSize: 64, hiddenAct: .quickGelu, numHeads: 2))
        // Qwen2-VL-2B-Instruct's vision_config: `in_chans`, no hidden_act or rope_parameters.
        let original = #"{"depth": 32, "embed_dim": 1280, "mlp_ratio": 4, "num_heads": 16, "in_chans": 3, "hidden_size": 1536, "patch_size": 14, "spatial_merge_size": 2, "spatial_patch_size": 14, "temporal_patch_size": 2}"#
        let decoded = try JSONDecoder().decode(Qwen2VisionConfig.self, from: Data(original.utf8))
        #expect(decoded == Qwen2VisionConfig(depth: 32, embedDim: 1280, hiddenSize: 1536, numHeads: 16))
        #expect(decoded.mlpWidth == 5120 && decoded.patchValues == 1176 && decoded.mergedWidth == 5120)
        #expect(throws: ModelError.invalidConfig(key: "hidden_act", reason: "unsupported activation silu (supported: gelu, quick_gelu)")) {
            try JSONDecoder().decode(Qwen2VisionConfig.self, from: Data(#"{"hidden_act": "silu"}"#.utf8))
        }
        var bad = fixture.vision
        bad.numHeads = 3
        #expect(throws: ModelError.self) { try Qwen2VisionTransformer(weights: fixture.weights, config: bad) }
        // Round trip through the manifest's encoding.
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        #expect(try decoder.decode(Qwen2VisionConfig.self, from: encoder.encode(fixture.vision)) == fixture.vision)
    }
}
