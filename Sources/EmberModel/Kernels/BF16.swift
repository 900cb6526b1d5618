import CEmberBF16
import Dispatch

// Optional bf16 compute (`ComputePrecision.bf16`): the linear layers of the text and audio
// towers and the vision tower's wider 1×1 convolutions round activations and weights to
// bf16 and sum in fp32 with AVX512-BF16 `vdpbf16ps` (CEmberBF16), about twice the fp32
// GEMM throughput of OpenBLAS on these CPUs. Accuracy per tower is bounded in the tests (cosine ≥ 0.999 against fp32).

/// Arithmetic of the towers' linear layers.
public enum ComputePrecision: String, Sendable, CaseIterable {
    /// IEEE single precision throughout (the parity-tested default).
    case fp32
    /// bf16 products with fp32 sums in the text and audio linear layers and attention, and the
    /// vision tower's wider 1×1 convolutions; fp32 elsewhere.
    case bf16

    /// Whether this CPU runs the bf16 kernels (AVX512-BF16).
    public static var bf16Available: Bool { ember_bf16_available() != 0 }
}

/// A linear layer's weight (out, in) rounded to bf16 once, at load, in the kernel's panel
/// layout. Immutable after init and shared by all threads.
package final class BF16Weights: @unchecked Sendable {
    let outFeatures: Int
    let inFeatures: Int
    let packed: UnsafeMutablePointer<UInt16>

    package convenience init(_ weight: UnsafePointer<Float>, outFeatures: Int, inFeatures: Int) {
        self.init(weight, outFeatures: outFeatures, inFeatures: inFeatures, rowStride: inFeatures, columnStride: 1)
    }

    /// Packs a strided view: w[row, column] = weight[row · rowStride + column · columnStride]
    /// (columnStride = outFeatures, rowStride = 1 packs the transpose of a stored matrix).
    package init(_ weight: UnsafePointer<Float>, outFeatures: Int, inFeatures: Int, rowStride: Int, columnStride: Int) {
        self.outFeatures = outFeatures
        self.inFeatures = inFeatures
        packed = .allocate(capacity: ember_bf16_packed_count(Int32(outFeatures), Int32(inFeatures)))
        ember_bf16_pack_strided(weight, Int32(outFeatures), Int32(inFeatures), rowStride, columnStride, packed)
    }

    deinit { packed.deallocate() }

    /// bf16 elements in the packed layout (panels of 32 rows, k padded to pairs).
    package var packedCount: Int { ember_bf16_packed_count(Int32(outFeatures), Int32(inFeatures)) }

    /// Where the kernel reads w[row, column]: panel row / 32, then pair column / 2, then
    /// row % 32, then column % 2 (the two k values `vdpbf16ps` sums into one lane are adjacent).
    package func packedIndex(row: Int, column: Int) -> Int {
        let pairs = (inFeatures + 1) / 2
        return ((row / 32 * pairs + column / 2) * 32 + row % 32) * 2 + column % 2
    }
}

/// `ember_bf16_softmax_convert` over rows of x (rows × width): bf16 bits of
/// exp(scale·x − scale·max) in rows of `width` rounded up to even, and each row's fp32 sum.
package func softmaxBF16Rows(_ x: UnsafePointer<Float>, rows: Int, width: Int, scale: Float) -> (bits: [UInt16], sums: [Float]) {
    var bits = [UInt16](repeating: 0xffff, count: ember_bf16_rows_count(Int32(rows), Int32(width)))
    var sums = [Float](repeating: .nan, count: rows)
    ember_bf16_softmax_convert(x, Int32(rows), Int32(width), Int32(width), scale, &bits, &sums)
    return (bits, sums)
}

/// UInt16 scratch `linearBF16` needs for `rows` rows of `inFeatures` inputs, in floats (for a ScratchArena).
package func bf16ScratchFloats(rows: Int, inFeatures: Int) -> Int {
    (ember_bf16_rows_count(Int32(rows), Int32(inFeatures)) + 1) / 2
}

/// What a linear layer applies to its output after the bias.
package enum LinearActivation: Sendable {
    case none
    /// `geluErf`; in bf16 fused into the kernel's store (same erf approximation, 16 lanes).
    case gelu

    /// The kernel's epilogue flag.
    var bf16Flag: Int32 { self == .gelu ? Int32(EMBER_BF16_GELU) : Int32(EMBER_BF16_NONE) }
}

/// `linear` in bf16: out (R, out) = bf16(x) · bf16(weight)ᵀ + bias with fp32 sums, then
/// `activation`, both applied to each output tile while it is in registers. x: (R, in),
/// out row stride `ldOut`; `scratch` holds `bf16ScratchFloats(rows:inFeatures:)` floats.
/// With `norm`, each row of x is layer-normalized on its way to bf16 (a pre-norm sublayer:
/// no fp32 LN(x) pass through memory); with `accumulate`, the result is added to what `out`
/// holds (a residual connection) in the same store.
/// Row blocks split over `threads`; each element's sum is the same whatever the split.
package func linearBF16(
    _ x: UnsafePointer<Float>, rows: Int, inFeatures: Int, norm: LayerNormParameters? = nil, weight: BF16Weights, bias: UnsafePointer<Float>?,
    out: UnsafeMutablePointer<Float>, ldOut: Int? = nil, accumulate: Bool = false, scratch: UnsafeMutablePointer<Float>, threads: Int = 1,
    activation: LinearActivation = .none
) {
    let ld = ldOut ?? weight.outFeatures, n = Int32(weight.outFeatures)
    let flags = activation.bf16Flag | (accumulate ? Int32(EMBER_BF16_ACCUMULATE) : 0)
    linearBF16Blocks(x, rows: rows, inFeatures: inFeatures, norm: norm, weight: weight, scratch: scratch, threads: threads) { xb, first, count in
        ember_bf16_gemm_epilogue(xb, Int32(count), Int32(inFeatures), weight.packed, n, out + first * ld, Int32(ld), bias, flags)
    }
}

/// `linearBF16` whose output is rounded to bf16 in the store, rows of `ldOut` UInt16
/// (default outFeatures): the input of a bf16 product that follows (attention's q, k, v),
/// without an fp32 round trip. The bits equal rounding `linearBF16`'s fp32 output.
package func linearBF16(
    _ x: UnsafePointer<Float>, rows: Int, inFeatures: Int, norm: LayerNormParameters? = nil, weight: BF16Weights, bias: UnsafePointer<Float>?,
    roundedOut out: UnsafeMutablePointer<UInt16>, ldOut: Int? = nil, scratch: UnsafeMutablePointer<Float>, threads: Int = 1,
    activation: LinearActivation = .none
) {
    let ld = ldOut ?? weight.outFeatures, n = Int32(weight.outFeatures)
    linearBF16Blocks(x, rows: rows, inFeatures: inFeatures, norm: norm, weight: weight, scratch: scratch, threads: threads) { xb, first, count in
        ember_bf16_gemm_to_bf16(xb, Int32(count), Int32(inFeatures), weight.packed, n, out + first * ld, Int32(ld), bias, activation.bf16Flag)
    }
}

/// Row blocks of a bf16 linear layer over `threads`: each block's rows rounded (normalized
/// first with `norm`) into `scratch`, then `product(rounded rows, first row, rows)`.
private func linearBF16Blocks(
    _ x: UnsafePointer<Float>, rows: Int, inFeatures: Int, norm: LayerNormParameters?, weight: BF16Weights, scratch: UnsafeMutablePointer<Float>,
    threads: Int, _ product: (_ xb: UnsafePointer<UInt16>, _ first: Int, _ count: Int) -> Void
) {
    precondition(weight.inFeatures == inFeatures, "bf16 weight has \(weight.inFeatures) inputs, not \(inFeatures)")
    let rowElements = ember_bf16_rows_count(1, Int32(inFeatures))
    let converted = UnsafeMutableRawPointer(scratch).bindMemory(to: UInt16.self, capacity: rows * rowElements)
    let profile = GEMMProfile.shared, profiling = profile.enabled
    let start = profiling ? DispatchTime.now().uptimeNanoseconds : 0
    var chunksRun = 1
    defer {
        if profiling {
            profile.record(nanoseconds: DispatchTime.now().uptimeNanoseconds - start, threads: chunksRun, m: rows, n: weight.outFeatures, k: inFeatures)
        }
    }
    chunksRun = parallelChunks(rows, threads: threads, grain: 32) { block in
        let xb = converted + block.lowerBound * rowElements
        roundRows(x + block.lowerBound * inFeatures, rows: block.count, width: inFeatures, norm: norm, into: xb)
        product(xb, block.lowerBound, block.count)
    }
}

/// A layer normalization's parameters: (x − mean) / sqrt(var + eps) · gamma + beta per row.
package struct LayerNormParameters: Sendable {
    let gamma: [Float]
    let beta: [Float]
    let eps: Float

    package init(gamma: [Float], beta: [Float], eps: Float) {
        self.gamma = gamma
        self.beta = beta
        self.eps = eps
    }
}

/// Rows of x (rows × width, packed) rounded to the kernel's bf16 input rows, layer-normalized first with `norm`.
private func roundRows(_ x: UnsafePointer<Float>, rows: Int, width: Int, norm: LayerNormParameters?, into xb: UnsafeMutablePointer<UInt16>) {
    if let norm {
        precondition(norm.gamma.count == width && norm.beta.count == width, "layer norm of width \(norm.gamma.count) on rows of \(width)")
        ember_bf16_layer_norm(x, Int32(rows), Int32(width), Int32(width), norm.gamma, norm.beta, norm.eps, xb)
    } else {
        ember_bf16_convert(x, Int32(rows), Int32(width), Int32(width), xb)
    }
}

/// Rows per block of `feedForwardBF16`: a block's rounded input (64 × width) and hidden
/// activations (64 × hidden, 192 KB at 1536) stay in L2 between the two products.
private let feedForwardBlock = 64

/// Floats of scratch `feedForwardBF16` needs: per worker, one block's rounded input and hidden rows.
package func feedForwardBF16ScratchFloats(width: Int, hiddenWidth: Int, threads: Int) -> Int {
    max(threads, 1) * (Int(ember_bf16_rows_count(Int32(feedForwardBlock), Int32(width)) + ember_bf16_rows_count(Int32(feedForwardBlock), Int32(hiddenWidth))) + 1) / 2
}

/// The feed-forward sublayer in bf16, x += down · act(up · norm(x) + upBias) + downBias,
/// one block of rows at a time: the normalized (or plainly rounded) input, the hidden
/// activations rounded to bf16 by the up-projection's store, and the down-projection added
/// into x by its store; nothing of width `hidden` passes through memory in fp32. Rows are
/// independent, so blocks and thread splits do not change values.
package func feedForwardBF16(
    _ x: UnsafeMutablePointer<Float>, rows: Int, width: Int, norm: LayerNormParameters?,
    up: BF16Weights, upBias: UnsafePointer<Float>, activation: LinearActivation, down: BF16Weights, downBias: UnsafePointer<Float>,
    scratch: UnsafeMutablePointer<Float>, threads: Int = 1
) {
    let hiddenWidth = up.outFeatures
    precondition(up.inFeatures == width && down.inFeatures == hiddenWidth && down.outFeatures == width,
                 "feed-forward shapes \(up.outFeatures)×\(up.inFeatures), \(down.outFeatures)×\(down.inFeatures) for width \(width)")
    precondition(hiddenWidth % 2 == 0, "hidden width \(hiddenWidth) must be even (bf16 rows are k pairs)")
    let inputElements = ember_bf16_rows_count(Int32(feedForwardBlock), Int32(width))
    let workerElements = inputElements + ember_bf16_rows_count(Int32(feedForwardBlock), Int32(hiddenWidth))
    let base = UnsafeMutableRawPointer(scratch).bindMemory(to: UInt16.self, capacity: max(threads, 1) * workerElements)
    let profile = GEMMProfile.shared, profiling = profile.enabled
    let start = profiling ? DispatchTime.now().uptimeNanoseconds : 0
    var chunksRun = 1
    defer {
        if profiling {
            let nanoseconds = DispatchTime.now().uptimeNanoseconds - start
            profile.record(nanoseconds: nanoseconds / 2, threads: chunksRun, m: rows, n: hiddenWidth, k: width)
            profile.record(nanoseconds: nanoseconds - nanoseconds / 2, threads: chunksRun, m: rows, n: width, k: hiddenWidth)
        }
    }
    chunksRun = parallelChunks(rows, threads: threads, grain: 32) { chunk, worker in
        let input = base + worker * workerElements, hidden = input + inputElements
        for first in stride(from: chunk.lowerBound, to: chunk.upperBound, by: feedForwardBlock) {
            let count = min(feedForwardBlock, chunk.upperBound - first), block = x + first * width
            roundRows(block, rows: count, width: width, norm: norm, into: input)
            ember_bf16_gemm_to_bf16(input, Int32(count), Int32(width), up.packed, Int32(hiddenWidth), hidden, Int32(hiddenWidth), upBias,
                                    activation.bf16Flag)
            ember_bf16_gemm_epilogue(hidden, Int32(count), Int32(hiddenWidth), down.packed, Int32(width), block, Int32(width), downBias,
                                     Int32(EMBER_BF16_ACCUMULATE))
        }
    }
}

/// `linear`, or `linearBF16` when the layer has bf16 weights (`bf16` non-nil, with `scratch`),
/// then `activation` (in fp32 a separate `geluErf` pass over the output, as before).
package func linear(
    _ x: UnsafePointer<Float>, rows: Int, inFeatures: Int,
    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, outFeatures: Int,
    out: UnsafeMutablePointer<Float>, ldOut: Int? = nil, bf16: BF16Weights?, scratch: UnsafeMutablePointer<Float>?, threads: Int = 1,
    activation: LinearActivation = .none
) {
    if let bf16, let scratch {
        linearBF16(x, rows: rows, inFeatures: inFeatures, weight: bf16, bias: bias, out: out, ldOut: ldOut, scratch: scratch, threads: threads,
                   activation: activation)
    } else {
        linear(x, rows: rows, inFeatures: inFeatures, weight: weight, bias: bias, outFeatures: outFeatures, out: out, ldOut: ldOut, threads: threads)
        if activation == .gelu {
            let ld = ldOut ?? outFeatures
            if ld == outFeatures {
                geluErf(out, count: rows * outFeatures, threads: threads)
            } else {
                for r in 0..<rows { geluErf(out + r * ld, count: outFeatures, threads: threads) }
            }
        }
    }
}

/// A 1×1 convolution's weight (Cout, Cin) rounded to bf16 once, at load, as the kernel's
/// row operand (rows of Cin padded to even). Immutable after init and shared by all threads.
package final class BF16Rows: @unchecked Sendable {
    let rows: Int
    let columns: Int
    let values: UnsafeMutablePointer<UInt16>

    package init(_ weight: UnsafePointer<Float>, rows: Int, columns: Int) {
        self.rows = rows
        self.columns = columns
        values = .allocate(capacity: ember_bf16_rows_count(Int32(rows), Int32(columns)))
        ember_bf16_convert(weight, Int32(rows), Int32(columns), Int32(columns), values)
    }

    deinit { values.deallocate() }
}

/// Floats of scratch `pointwiseConvBF16` needs for x (Cin, S): the activations packed as the
/// kernel's panel operand.
package func pointwiseBF16ScratchFloats(inChannels: Int, spatial: Int) -> Int {
    (ember_bf16_packed_count(Int32(spatial), Int32(inChannels)) + 1) / 2
}

/// `pointwiseConv` in bf16: out (Cout, S) = bf16(weight) · bf16(x) + bias, clamped to [0, 6]
/// when `relu6`, fp32 sums, bias and clamp applied in the kernel's store. x (Cin, S) is
/// packed per call (its 32-column panels are 32 adjacent floats of each channel row).
/// Column panels split over `threads`; each output is the same dot product over Cin
/// whatever the split or S, so results do not depend on threads or batch size.
package func pointwiseConvBF16(
    _ x: UnsafePointer<Float>, inChannels: Int, spatial: Int, weight: BF16Rows, bias: UnsafePointer<Float>?,
    relu6: Bool = false, out: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>, threads: Int = 1
) {
    precondition(weight.columns == inChannels, "bf16 weight has \(weight.columns) inputs, not \(inChannels)")
    let panel = 32, panels = (spatial + panel - 1) / panel
    let panelElements = ember_bf16_packed_count(Int32(panel), Int32(inChannels))
    let packed = UnsafeMutableRawPointer(scratch).bindMemory(to: UInt16.self, capacity: panels * panelElements)
    let activation = (bias != nil ? Int32(EMBER_BF16_ROW_BIAS) : 0) | (relu6 ? Int32(EMBER_BF16_RELU6) : Int32(EMBER_BF16_NONE))
    let profile = GEMMProfile.shared, profiling = profile.enabled
    let start = profiling ? DispatchTime.now().uptimeNanoseconds : 0
    var chunksRun = 1
    defer {
        if profiling { profile.record(nanoseconds: DispatchTime.now().uptimeNanoseconds - start, threads: chunksRun, m: weight.rows, n: spatial, k: inChannels) }
    }
    // At least ~64k multiply-adds per chunk, so small late-stage layers stay on one thread.
    chunksRun = parallelChunks(panels, threads: threads, grain: max(1, (1 << 16) / max(weight.rows * inChannels * panel, 1))) { chunk in
        let first = chunk.lowerBound * panel, columns = min(chunk.upperBound * panel, spatial) - first
        let block = packed + chunk.lowerBound * panelElements
        ember_bf16_pack_strided(x + first, Int32(columns), Int32(inChannels), 1, spatial, block)
        ember_bf16_gemm_epilogue(weight.values, Int32(weight.rows), Int32(inChannels), block, Int32(columns), out + first, Int32(spatial),
                                 bias, activation)
    }
}

/// `pointwiseConv`, or `pointwiseConvBF16` when the layer has bf16 weights (`bf16` non-nil, with `scratch`).
package func pointwiseConv(
    _ x: UnsafePointer<Float>, inChannels: Int, spatial: Int,
    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, outChannels: Int,
    relu6: Bool = false, out: UnsafeMutablePointer<Float>, bf16: BF16Rows?, scratch: UnsafeMutablePointer<Float>?, threads: Int = 1
) {
    if let bf16, let scratch {
        pointwiseConvBF16(x, inChannels: inChannels, spatial: spatial, weight: bf16, bias: bias, relu6: relu6, out: out, scratch: scratch,
                          threads: threads)
    } else {
        pointwiseConv(x, inChannels: inChannels, spatial: spatial, weight: weight, bias: bias, outChannels: outChannels, relu6: relu6,
                      out: out, threads: threads)
    }
}
