// Qwen2-VL vision tower, as Hugging Face transformers 5.24 implements it
// (models/qwen2_vl/modeling_qwen2_vl.py, `Qwen2VisionTransformerPretrainedModel`; its
// `pooler_output` is what this returns): Conv3d patch embedding over (T, P, P) patches as
// one GEMM, axial 2D rotary positions, pre-norm blocks with attention within each image
// (cu_seqlens), then the PatchMerger: LayerNorm, m×m neighbouring patches concatenated,
// Linear–GELU–Linear into the language model's width.
//
// Tensor names (prefix `visual.` in Qwen2-VL checkpoints):
//   patch_embed.proj.weight            (E, C, T, P, P), no bias
//   blocks.{i}.norm1.{weight,bias}     (E)          LayerNorm eps 1e-6
//   blocks.{i}.attn.qkv.{weight,bias}  (3E, E), (3E)
//   blocks.{i}.attn.proj.{weight,bias} (E, E), (E)
//   blocks.{i}.norm2.{weight,bias}     (E)
//   blocks.{i}.mlp.fc1.{weight,bias}   (F, E), (F)  F = E · mlp_ratio, hidden_act between
//   blocks.{i}.mlp.fc2.{weight,bias}   (E, F), (E)
//   merger.ln_q.{weight,bias}          (E)          LayerNorm eps 1e-6
//   merger.mlp.0.{weight,bias}         (m²E, m²E), (m²E)   then exact GELU
//   merger.mlp.2.{weight,bias}         (H, m²E), (H)       H = hidden_size
//
// Shape legend: N patches (rows of pixel_values), E embed_dim, hd = E / num_heads,
// m spatial_merge_size, H hidden_size; an image of grid (t, h, w) gives t·h·w patches and
// t·h·w / m² output tokens.

import EmberContract
import Foundation

/// The vision tower. Immutable after init; `encode` may run concurrently with one arena per caller.
public final class Qwen2VisionTransformer: Sendable {
    public let config: Qwen2VisionConfig
    let patchEmbed: [Float]                 // patch_embed.proj.weight viewed as (E, C·T·P·P)
    let blocks: [PreNormBlock]
    let lnQ, lnQBias: [Float]               // merger.ln_q
    let mlp0, mlp0Bias: [Float]             // merger.mlp.0
    let mlp2, mlp2Bias: [Float]             // merger.mlp.2
    let inverseFrequencies: [Float]         // hd/4 rotary frequencies, shared by the h and w axes
    let bf16: (patchEmbed: BF16Weights, mlp0: BF16Weights, mlp2: BF16Weights)?  // ComputePrecision.bf16 only
    public let precision: ComputePrecision

    /// Loads the tensors under `prefix`; a missing or mis-shaped tensor, or an unknown one
    /// under the prefix, is a `ModelError` naming it. `precision` .bf16 (AVX512-BF16 CPUs
    /// only) runs the linear layers and attention products in bf16 with fp32 sums; norms,
    /// rotary, softmax and activations stay fp32.
    public init(weights: SafeTensorsFile, prefix: String = "visual.", config: Qwen2VisionConfig,
                precision: ComputePrecision = .fp32) throws {
        try config.validate()
        self.config = config
        self.precision = precision
        let e = config.embedDim, p = config.patchSize, merged = config.mergedWidth
        var loader = ScopedTensorLoader(weights, prefix: prefix)
        patchEmbed = try loader.take("patch_embed.proj.weight", [e, config.inChannels, config.temporalPatchSize, p, p])
        blocks = try (0..<config.depth).map {
            try PreNormBlock(&loader, index: $0, width: e, mlpWidth: config.mlpWidth, heads: config.numHeads,
                             activation: config.hiddenAct, eps: 1e-6, precision: precision)
        }
        lnQ = try loader.take("merger.ln_q.weight", [e])
        lnQBias = try loader.take("merger.ln_q.bias", [e])
        mlp0 = try loader.take("merger.mlp.0.weight", [merged, merged])
        mlp0Bias = try loader.take("merger.mlp.0.bias", [merged])
        mlp2 = try loader.take("merger.mlp.2.weight", [config.hiddenSize, merged])
        mlp2Bias = try loader.take("merger.mlp.2.bias", [config.hiddenSize])
        try loader.finish()
        bf16 = precision == .bf16
            ? (BF16Weights(patchEmbed, outFeatures: e, inFeatures: config.patchValues),
               BF16Weights(mlp0, outFeatures: merged, inFeatures: merged), BF16Weights(mlp2, outFeatures: config.hiddenSize, inFeatures: merged))
            : nil
        // Qwen2VLVisionRotaryEmbedding: 1 / θ^(2i / (hd/2)) for i < hd/4.
        let spatial = e / config.numHeads / 2
        inverseFrequencies = stride(from: 0, to: spatial, by: 2).map { 1 / powf(config.ropeTheta, Float($0) / Float(spatial)) }
    }

    /// Scratch floats one `encode` over these grids needs: the patches of keyframes
    /// (N, C·T·P·P; `encode(frames:)` lays them out in the arena), x, the block buffers,
    /// the rotary table (N, hd/2) twice, and the merger's (N/m², m²E) hidden rows; in bf16
    /// the rounded inputs of the patch embedding and merger too.
    public func scratchFloats(grids: [Qwen2VisionGrid], threads: Int = 1) -> Int {
        let tokens = grids.reduce(0) { $0 + $1.patches }, longest = grids.map { $0.h * $0.w }.max() ?? 0
        let e = config.embedDim
        return tokens * config.patchValues + tokens * e * 2 + tokens * (e / config.numHeads) + frontBF16Floats(tokens: tokens)
            + PreNormBlock.scratchFloats(tokens: tokens, longest: longest, width: e, mlpWidth: config.mlpWidth,
                                         heads: config.numHeads, threads: threads, precision: precision)
    }

    /// bf16 input rows of the patch embedding (N, C·T·P·P) or the merger (N/m², m²E), whichever is larger.
    private func frontBF16Floats(tokens: Int) -> Int {
        guard precision == .bf16 else { return 0 }
        let m2 = config.spatialMergeSize * config.spatialMergeSize
        return max(bf16ScratchFloats(rows: tokens, inFeatures: config.patchValues), bf16ScratchFloats(rows: tokens / m2, inFeatures: config.mergedWidth))
    }

    /// Tokens per frame of `frames` (N, 3, S, S), each frame one still image; S must be a
    /// multiple of patch_size · spatial_merge_size. One (S/P/m)² × hidden_size matrix per
    /// frame. The patches are laid out in the arena (nothing is allocated but the result).
    public func encode(frames: FrameBatch, arena: ScratchArena, threads: Int = 1) throws -> [[Float]] {
        guard frames.count > 0 else { return [] }
        let grid = try Qwen2VisionGrid(stillHeight: frames.size, width: frames.size, channels: 3, config: config)
        let grids = Array(repeating: grid, count: frames.count), perImage = grid.patches * config.patchValues
        arena.begin(floats: scratchFloats(grids: grids, threads: threads))
        let pixels = arena.carve(frames.count * perImage)
        frames.values.withUnsafeBufferPointer { source in
            for i in 0..<frames.count {
                patchify(source.baseAddress! + i * frames.frameValues, height: frames.size, width: frames.size, config: config,
                         out: pixels + i * perImage)
            }
        }
        return forward(pixels, grids: grids, arena: arena, threads: threads)
    }

    /// Tokens per image: (t·h·w / m², hidden_size) row-major for each grid of `patches`.
    /// `threads` is how many threads the pass may use; results do not depend on it.
    public func encode(_ patches: Qwen2VisionPatches, arena: ScratchArena, threads: Int = 1) throws -> [[Float]] {
        guard patches.values.count == patches.grids.reduce(0, { $0 + $1.patches }) * config.patchValues else {
            throw ModelError.invalidInput("pixel_values rows are \(config.patchValues) wide for this tower, got \(patches.values.count) values")
        }
        guard !patches.grids.isEmpty else { return [] }
        arena.begin(floats: scratchFloats(grids: patches.grids, threads: threads))
        return patches.values.withUnsafeBufferPointer { forward($0.baseAddress!, grids: patches.grids, arena: arena, threads: threads) }
    }

    /// The pass over `pixels` (Σ patches, C·T·P·P); the arena has begun with room for `scratchFloats(grids:)`.
    private func forward(_ pixels: UnsafePointer<Float>, grids: [Qwen2VisionGrid], arena: ScratchArena, threads: Int) -> [[Float]] {
        let e = config.embedDim, m2 = config.spatialMergeSize * config.spatialMergeSize, h = config.hiddenSize
        // Attention runs within each temporal slice of each image (HF cu_seqlens).
        var starts: [Int] = [], lengths: [Int] = []
        var offset = 0
        for grid in grids {
            for _ in 0..<grid.t {
                starts.append(offset)
                lengths.append(grid.h * grid.w)
                offset += grid.h * grid.w
            }
        }
        let tokens = offset, longest = lengths.max()!, half = e / config.numHeads / 2

        let x = arena.carve(tokens * e), merged = arena.carve(tokens * e)
        let cos = arena.carve(tokens * half), sin = arena.carve(tokens * half)
        let front = precision == .bf16 ? arena.carve(frontBF16Floats(tokens: tokens)) : nil
        let scratch = PreNormBlock.Scratch(arena, tokens: tokens, longest: longest, width: e, mlpWidth: config.mlpWidth,
                                           heads: config.numHeads, threads: threads, precision: precision)

        // Patch embedding: the Conv3d's kernel equals its stride, so it is x = pixel_values · Wᵀ.
        linear(pixels, rows: tokens, inFeatures: config.patchValues, weight: patchEmbed, bias: nil,
               outFeatures: e, out: x, bf16: bf16?.patchEmbed, scratch: front, threads: threads)
        rotaryTable(grids: grids, cos: cos, sin: sin)
        for block in blocks {
            block.forward(x, tokens: tokens, starts: starts, lengths: lengths, scratch: scratch, threads: threads) { qkv in
                self.rotate(qkv, tokens: tokens, cos: cos, sin: sin, threads: threads)
            }
        }
        // PatchMerger: LN per patch, then each m² consecutive rows as one (m²E) row → MLP.
        let groups = tokens / m2
        layerNorm(x, rows: tokens, width: e, gamma: lnQ, beta: lnQBias, eps: 1e-6, out: scratch.normed, threads: threads)
        linear(scratch.normed, rows: groups, inFeatures: m2 * e, weight: mlp0, bias: mlp0Bias, outFeatures: m2 * e, out: merged,
               bf16: bf16?.mlp0, scratch: front, threads: threads)
        geluErf(merged, count: groups * m2 * e, threads: threads)
        linear(merged, rows: groups, inFeatures: m2 * e, weight: mlp2, bias: mlp2Bias, outFeatures: h, out: x,
               bf16: bf16?.mlp2, scratch: front, threads: threads)

        var first = 0
        return grids.map { grid in
            let count = grid.patches / m2
            defer { first += count }
            return Array(UnsafeBufferPointer(start: x + first * h, count: count * h))
        }
    }

    /// cos/sin (N, hd/2) of each patch's angles: the first hd/4 from its row, the next hd/4
    /// from its column (HF `get_vision_position_ids` in merge-block order, repeated over t).
    private func rotaryTable(grids: [Qwen2VisionGrid], cos: UnsafeMutablePointer<Float>, sin: UnsafeMutablePointer<Float>) {
        let m = config.spatialMergeSize, quarter = inverseFrequencies.count, half = 2 * quarter
        var row = 0
        for grid in grids {
            for _ in 0..<grid.t {
                for bh in 0..<(grid.h / m) {
                    for bw in 0..<(grid.w / m) {
                        for mh in 0..<m {
                            for mw in 0..<m {
                                let y = Float(bh * m + mh), x = Float(bw * m + mw)
                                for i in 0..<quarter {
                                    let a = y * inverseFrequencies[i], b = x * inverseFrequencies[i]
                                    cos[row * half + i] = Foundation.cos(a)
                                    sin[row * half + i] = Foundation.sin(a)
                                    cos[row * half + quarter + i] = Foundation.cos(b)
                                    sin[row * half + quarter + i] = Foundation.sin(b)
                                }
                                row += 1
                            }
                        }
                    }
                }
            }
        }
    }

    /// Rotates q and k of every head in the (N, 3E) q|k|v rows (`rotate_half` convention:
    /// element i pairs with i + hd/2, both using angle i).
    private func rotate(_ qkv: UnsafeMutablePointer<Float>, tokens: Int, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, threads: Int) {
        let e = config.embedDim, heads = config.numHeads, hd = e / heads, half = hd / 2
        parallelChunks(tokens, threads: threads, grain: 64) { rows in
            for t in rows {
                let c = cos + t * half, s = sin + t * half
                for head in 0..<(2 * heads) {  // q heads, then k heads
                    let v = qkv + t * 3 * e + head * hd
                    for i in 0..<half {
                        let a = v[i], b = v[i + half]
                        v[i] = a * c[i] - b * s[i]
                        v[i + half] = b * c[i] + a * s[i]
                    }
                }
            }
        }
    }
}
