import Foundation
import Testing
@testable import EmberModel

/// The Qwen2 decoder against transformers 5.24 (`Ops/reference/qwen2vl_tiny.py`, fp32):
/// a bare Qwen2Model (causal, 1-D RoPE), Qwen2-VL's language model with multimodal RoPE,
/// and bidirectional attention + tanh-mean pooling against our PyTorch reference.
@Suite("Qwen2 decoder parity", .enabled(if: qwen2vlTinyAvailable, "needs Ops/model-fetch qwen2vl-tiny (Ops/test runs it)"))
struct Qwen2DecoderTests {
    let reference: VLMReference
    init() throws { reference = try VLMReference(qwen2vlTiny) }

    /// Runs `decoder` over the sequences packed, returns each sequence's states.
    func run(_ decoder: Qwen2Decoder, embeddings: [[Float]], positions: [RopePositions], mask: Qwen2Decoder.AttentionMask,
             threads: Int = 1) throws -> [[Float]] {
        let d = decoder.config.hiddenSize
        var x = embeddings.flatMap { $0 }
        let lengths = embeddings.map { $0.count / d }
        try x.withUnsafeMutableBufferPointer {
            try decoder.forward($0.baseAddress!, lengths: lengths, positions: positions, mask: mask, arena: ScratchArena(), threads: threads)
        }
        var start = 0
        return lengths.map { n in defer { start += n * d }; return Array(x[start ..< start + n * d]) }
    }

    func tinyDecoder() throws -> Qwen2Decoder {
        let manifest = try ModelManifest.load(directory: qwen2vlTiny)
        let vlm = try #require(manifest.fusion.vlm)
        return try Qwen2Decoder(weights: SafeTensorsFile(path: qwen2vlTiny.appendingPathComponent(vlm.weights).path), config: vlm.decoder)
    }

    @Test("a bare Qwen2Model (no prefix, 1-D RoPE, causal) matches transformers on a padded batch of two")
    func plainQwen2() throws {
        let directory = qwen2vlTiny.appendingPathComponent("reference")
        let json = JSONDecoder()
        json.keyDecodingStrategy = .convertFromSnakeCase
        let config = try json.decode(Qwen2DecoderConfig.self, from: Data(contentsOf: directory.appendingPathComponent("qwen2-decoder.json")))
        let decoder = try Qwen2Decoder(weights: SafeTensorsFile(path: directory.appendingPathComponent("qwen2-decoder.safetensors").path), config: config)
        #expect(decoder.prefix == "")
        let ids = try (0..<2).map { try reference.ids("qwen2.\($0).ids") }
        let embeddings = try ids.map { sequence in
            var rows = [Float](repeating: 0, count: sequence.count * config.hiddenSize)
            try rows.withUnsafeMutableBufferPointer { try decoder.embed(sequence, into: $0.baseAddress!) }
            return rows
        }
        let states = try run(decoder, embeddings: embeddings, positions: ids.map { RopePositions(segments: [.sequential(count: $0.count)]) },
                             mask: .causal)
        for i in 0..<2 { expectClose(states[i], try reference.floats("qwen2.\(i).hidden"), "qwen2 sequence \(i)") }
        var row = [Float](repeating: 0, count: 48)
        #expect(throws: ModelError.self) { try row.withUnsafeMutableBufferPointer { try decoder.embed([1000], into: $0.baseAddress!) } }
    }

    @Test("Qwen2-VL's language model with multimodal RoPE: positions equal get_rope_index's, states match, batched as alone")
    func multimodalRoPE() throws {
        let decoder = try tinyDecoder()
        #expect(decoder.prefix == "model.")
        #expect(decoder.config.mropeSection == [2, 3, 3])
        let imagePad: Int32 = 151655
        var embeddings: [[Float]] = [], positions: [RopePositions] = []
        for i in 0..<3 {
            let ids = try reference.ids("gme.\(i).ids")
            // Runs of image placeholders are one frame's 2 × 2 merged grid (56-pixel frames).
            var segments: [RopeSegment] = []
            var t = 0
            while t < ids.count {
                if ids[t] == imagePad {
                    segments.append(.image(gridHeight: 2, gridWidth: 2))
                    t += 4
                } else {
                    var n = 0
                    while t < ids.count && ids[t] != imagePad { n += 1; t += 1 }
                    segments.append(.sequential(count: n))
                }
            }
            let p = RopePositions(segments: segments)
            let expected = try reference.file.int64s("gme.\(i).positions").map { Int32($0) }
            #expect(p.temporal + p.height + p.width == expected, "item \(i) positions")
            positions.append(p)
            embeddings.append(try reference.floats("mrope.\(i).embeds"))
        }
        let batched = try run(decoder, embeddings: embeddings, positions: positions, mask: .causal, threads: 2)
        for i in 0..<3 {
            let single = try run(decoder, embeddings: [embeddings[i]], positions: [positions[i]], mask: .causal)[0]
            expectClose(single, try reference.floats("gme.\(i).hidden"), "M-RoPE item \(i)")
            // OpenBLAS picks kernels by matrix size, so batched and alone agree to rounding, not bits.
            expectClose(batched[i], single, tolerance: 1e-5, "item \(i): batched with others (2 threads) vs alone")
        }
    }

    @Test("bidirectional attention + tanh-mean pooling + Matryoshka prefixes match the PyTorch reference")
    func bidirectionalTanhMean() throws {
        let decoder = try tinyDecoder()
        let embeddings = try (0..<2).map { try reference.floats("bidirectional.\($0).embeds") }
        let lengths = embeddings.map { $0.count / 64 }
        let states = try run(decoder, embeddings: embeddings, positions: lengths.map { RopePositions(segments: [.sequential(count: $0)]) },
                             mask: .bidirectional)
        for i in 0..<2 {
            expectClose(states[i], try reference.floats("bidirectional.\(i).hidden"), "bidirectional states \(i)")
            let pooled = states[i].withUnsafeBufferPointer { FusionPooling.tanhMean.pool($0.baseAddress!, length: lengths[i], width: 64) }
            for size in [64, 32, 16] {
                expectClose(matryoshkaPrefix(pooled, dims: size), try reference.floats("bidirectional.\(i).pooled\(size)"), "pooled \(i) @\(size)")
            }
        }
        // The causal mask changes every state but the last row's dependence: a sanity check that the mask is applied.
        let causal = try run(decoder, embeddings: [embeddings[1]], positions: [RopePositions(segments: [.sequential(count: lengths[1])])], mask: .causal)[0]
        #expect(Comparison(causal, states[1]).maxAbsDiff > 1e-2)
    }

    @Test("Qwen2-VL as transformers 5 runs it (model.language_model. prefix) loads the same decoder; bf16 stays within cosine 0.999 of fp32")
    func prefixesAndBF16() throws {
        let manifest = try ModelManifest.load(directory: qwen2vlTiny)
        let vlm = try #require(manifest.fusion.vlm)
        let source = try SafeTensorsFile(path: qwen2vlTiny.appendingPathComponent(vlm.weights).path)
        let renamed = FileManager.default.temporaryDirectory.appendingPathComponent("qwen2vl-language-model-\(UUID().uuidString.prefix(8)).safetensors")
        defer { try? FileManager.default.removeItem(at: renamed) }
        try writeSafeTensors(try source.names.map { name in
            ("model.language_model." + name.dropFirst("model.".count), source.entries[name]!.shape, try source.floats(name))
        }, to: renamed)
        let decoder = try tinyDecoder()
        let moved = try Qwen2Decoder(weights: SafeTensorsFile(path: renamed.path), config: vlm.decoder)
        #expect(moved.prefix == "model.language_model.")
        let embeddings = [try reference.floats("mrope.0.embeds")]
        let positions = [RopePositions(segments: [.sequential(count: embeddings[0].count / 64)])]
        let fp32 = try run(decoder, embeddings: embeddings, positions: positions, mask: .causal)[0]
        #expect(try run(moved, embeddings: embeddings, positions: positions, mask: .causal)[0] == fp32)
        if ComputePrecision.bf16Available {
            let bf16 = try Qwen2Decoder(weights: SafeTensorsFile(path: renamed.path), config: vlm.decoder, precision: .bf16)
            let states = try run(bf16, embeddings: embeddings, positions: positions, mask: .causal)[0]
            #expect(Comparison(states, fp32).cosine >= 0.999, "\(Comparison(states, fp32))")
        }
    }
}
