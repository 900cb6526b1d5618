// The pre-norm transformer block the Qwen2-VL vision tower (`Qwen2VLVisionBlock`) and the
// SAIL perceiver (Ops/reference/sail_parts.py `Block`) share: x += proj(attn(LN1(x)));
// x += fc2(act(fc1(LN2(x)))), LayerNorm with bias, fused q/k/v with bias, bidirectional
// attention within each packed sequence. The vision tower rotates q and k in between.
//
// Shape legend: T packed tokens, D width, F MLP width, hd = D / heads.

/// `hidden_act` of a block's MLP (Hugging Face `ACT2FN` names).
public enum HiddenActivation: String, Codable, Sendable, CaseIterable {
    /// Exact GELU, `x/2 · (1 + erf(x/√2))` (`nn.GELU()`).
    case gelu
    /// `x · sigmoid(1.702 x)` (CLIP; Qwen2-VL's vision blocks).
    case quickGelu = "quick_gelu"

    func apply(_ x: UnsafeMutablePointer<Float>, count: Int, threads: Int) {
        switch self {
        case .gelu: geluErf(x, count: count, threads: threads)
        case .quickGelu: quickGELU(x, count: count, threads: threads)
        }
    }

    init(key: String, value: String) throws {
        guard let activation = HiddenActivation(rawValue: value) else {
            throw ModelError.invalidConfig(key: key, reason: "unsupported activation \(value) (supported: gelu, quick_gelu)")
        }
        self = activation
    }
}

/// `x · sigmoid(1.702 x)` in place, over whole 8-lane vectors per chunk (results do not depend on `threads`).
func quickGELU(_ x: UnsafeMutablePointer<Float>, count: Int, threads: Int = 1) {
    parallelChunks((count + 7) / 8, threads: threads, grain: 1 << 11) { vectors in
        let first = vectors.lowerBound * 8
        mapLanes(x + first, count: min(vectors.upperBound * 8, count) - first) { v in v / (1 + exp(v * -1.702)) }
    }
}

/// One block's weights, names under `…blocks.{i}.` as in the checkpoint.
struct PreNormBlock: Sendable {
    let norm1, norm1Bias: [Float]  // norm1.{weight,bias} (D)
    let qkv, qkvBias: [Float]      // attn.qkv (3D, D): rows q, k, v, each heads × hd
    let proj, projBias: [Float]    // attn.proj (D, D)
    let norm2, norm2Bias: [Float]  // norm2.{weight,bias} (D)
    let fc1, fc1Bias: [Float]      // mlp.fc1 (F, D)
    let fc2, fc2Bias: [Float]      // mlp.fc2 (D, F)
    let width, mlpWidth, heads: Int
    let activation: HiddenActivation
    let eps: Float
    let bf16: (qkv: BF16Weights, proj: BF16Weights, fc1: BF16Weights, fc2: BF16Weights)?  // ComputePrecision.bf16 only

    init(_ loader: inout ScopedTensorLoader, index i: Int, width d: Int, mlpWidth f: Int, heads: Int,
         activation: HiddenActivation, eps: Float, precision: ComputePrecision) throws {
        let p = "blocks.\(i)."
        norm1 = try loader.take(p + "norm1.weight", [d])
        norm1Bias = try loader.take(p + "norm1.bias", [d])
        qkv = try loader.take(p + "attn.qkv.weight", [3 * d, d])
        qkvBias = try loader.take(p + "attn.qkv.bias", [3 * d])
        proj = try loader.take(p + "attn.proj.weight", [d, d])
        projBias = try loader.take(p + "attn.proj.bias", [d])
        norm2 = try loader.take(p + "norm2.weight", [d])
        norm2Bias = try loader.take(p + "norm2.bias", [d])
        fc1 = try loader.take(p + "mlp.fc1.weight", [f, d])
        fc1Bias = try loader.take(p + "mlp.fc1.bias", [f])
        fc2 = try loader.take(p + "mlp.fc2.weight", [d, f])
        fc2Bias = try loader.take(p + "mlp.fc2.bias", [d])
        (width, mlpWidth, self.heads, self.activation, self.eps) = (d, f, heads, activation, eps)
        bf16 = precision == .bf16
            ? (BF16Weights(qkv, outFeatures: 3 * d, inFeatures: d), BF16Weights(proj, outFeatures: d, inFeatures: d),
               BF16Weights(fc1, outFeatures: f, inFeatures: d), BF16Weights(fc2, outFeatures: d, inFeatures: f))
            : nil
    }

    /// Scratch floats `forward` needs for `tokens` packed tokens, the longest sequence
    /// `longest`; in bf16 also the rounded input rows of the widest linear layer and the
    /// attention workers' bf16 buffers.
    static func scratchFloats(tokens: Int, longest: Int, width d: Int, mlpWidth f: Int, heads: Int, threads: Int,
                              precision: ComputePrecision) -> Int {
        tokens * (5 * d + f) + max(threads, 1) * longest * longest
            + (precision == .bf16 ? bf16ScratchFloats(rows: tokens, inFeatures: max(d, f))
                + max(threads, 1) * attentionBF16ScratchFloats(maxLength: longest, headDim: d / heads) : 0)
    }

    /// Buffers carved once per pass and shared by every block of a stack.
    struct Scratch {
        let normed, qkv, context, hidden, scores: UnsafeMutablePointer<Float>
        /// bf16 only: rounded linear-layer inputs (`linearBF16`), then per-worker attention buffers.
        let bf16, bf16Attention: UnsafeMutablePointer<Float>?

        init(_ arena: ScratchArena, tokens: Int, longest: Int, width d: Int, mlpWidth f: Int, heads: Int, threads: Int,
             precision: ComputePrecision) {
            normed = arena.carve(tokens * d)
            qkv = arena.carve(tokens * 3 * d)
            context = arena.carve(tokens * d)
            hidden = arena.carve(tokens * f)
            scores = arena.carve(max(threads, 1) * longest * longest)
            bf16 = precision == .bf16 ? arena.carve(bf16ScratchFloats(rows: tokens, inFeatures: max(d, f))) : nil
            bf16Attention = precision == .bf16
                ? arena.carve(max(threads, 1) * attentionBF16ScratchFloats(maxLength: longest, headDim: d / heads)) : nil
        }
    }

    /// x (T, D) in place; sequence s is rows [starts[s], starts[s] + lengths[s]). `rotate`
    /// receives the (T, 3D) q|k|v rows before attention (the vision tower's 2D rotary).
    func forward(_ x: UnsafeMutablePointer<Float>, tokens: Int, starts: [Int], lengths: [Int], scratch s: Scratch,
                 threads: Int, rotate: ((UnsafeMutablePointer<Float>) -> Void)? = nil) {
        let d = width, f = mlpWidth, headDim = d / heads
        // x += proj(attention(qkv(LN1(x))))
        layerNorm(x, rows: tokens, width: d, gamma: norm1, beta: norm1Bias, eps: eps, out: s.normed, threads: threads)
        linear(s.normed, rows: tokens, inFeatures: d, weight: qkv, bias: qkvBias, outFeatures: 3 * d, out: s.qkv,
               bf16: bf16?.qkv, scratch: s.bf16, threads: threads)
        rotate?(s.qkv)
        attention(qkv: s.qkv, stride: 3 * d, heads: heads, headDim: headDim, starts: starts, lengths: lengths,
                  scale: 1 / Float(headDim).squareRoot(), scores: s.scores, out: s.context, bf16: s.bf16Attention, threads: threads)
        linear(s.context, rows: tokens, inFeatures: d, weight: proj, bias: projBias, outFeatures: d, out: s.normed,
               bf16: bf16?.proj, scratch: s.bf16, threads: threads)
        addInPlace(x, s.normed, count: tokens * d, threads: threads)
        // x += fc2(act(fc1(LN2(x))))
        layerNorm(x, rows: tokens, width: d, gamma: norm2, beta: norm2Bias, eps: eps, out: s.normed, threads: threads)
        linear(s.normed, rows: tokens, inFeatures: d, weight: fc1, bias: fc1Bias, outFeatures: f, out: s.hidden,
               bf16: bf16?.fc1, scratch: s.bf16, threads: threads)
        activation.apply(s.hidden, count: tokens * f, threads: threads)
        linear(s.hidden, rows: tokens, inFeatures: f, weight: fc2, bias: fc2Bias, outFeatures: d, out: s.normed,
               bf16: bf16?.fc2, scratch: s.bf16, threads: threads)
        addInPlace(x, s.normed, count: tokens * d, threads: threads)
    }
}
