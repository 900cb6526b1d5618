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
}

/// `linear` in bf16: out (R, out) = bf16(x) · bf16(weight)ᵀ + bias with fp32 sums, then
/// `activation`, both applied to each output tile while it is in registers. x: (R, in),
/// out row stride `ldOut`; `scratch` holds `bf16ScratchFloats(rows:inFeatures:)` floats.
/// Row blocks split over `threads`; each element's sum is the same whatever the split.
package func linearBF16(
    _ x: UnsafePointer<Float>, rows: Int, inFeatures: Int, weight: BF16Weights, bias: UnsafePointer<Float>?,
    out: UnsafeMutablePointer<Float>, ldOut: Int? = nil, scratch: UnsafeMutablePointer<Float>, threads: Int = 1,
    activation: LinearActivation = .none
) {
    precondition(weight.inFeatures == inFeatures, "bf16 weight has \(weight.inFeatures) inputs, not \(inFeatures)")
    let ld = ldOut ?? weight.outFeatures, n = weight.outFeatures
    let rowElements = ember_bf16_rows_count(1, Int32(inFeatures))
    let converted = UnsafeMutableRawPointer(scratch).bindMemory(to: UInt16.self, capacity: rows * rowElements)
    let profile = GEMMProfile.shared, profiling = profile.enabled
    let start = profiling ? DispatchTime.now().uptimeNanoseconds : 0
    defer {
        if profiling { profile.record(nanoseconds: DispatchTime.now().uptimeNanoseconds - start, m: rows, n: n, k: inFeatures) }
    }
    parallelChunks(rows, threads: threads, grain: 32) { block in
        let xb = converted + block.lowerBound * rowElements
        ember_bf16_convert(x + block.lowerBound * inFeatures, Int32(block.count), Int32(inFeatures), Int32(inFeatures), xb)
        ember_bf16_gemm_epilogue(xb, Int32(block.count), Int32(inFeatures), weight.packed, Int32(n), out + block.lowerBound * ld, Int32(ld),
                                 bias, activation == .gelu ? Int32(EMBER_BF16_GELU) : Int32(EMBER_BF16_NONE))
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
    defer {
        if profiling { profile.record(nanoseconds: DispatchTime.now().uptimeNanoseconds - start, m: weight.rows, n: spatial, k: inChannels) }
    }
    // At least ~64k multiply-adds per chunk, so small late-stage layers stay on one thread.
    parallelChunks(panels, threads: threads, grain: max(1, (1 << 16) / max(weight.rows * inChannels * panel, 1))) { chunk in
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
