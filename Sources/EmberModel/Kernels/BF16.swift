import CEmberBF16
import Dispatch

// Optional bf16 compute (`ComputePrecision.bf16`): the linear layers of the text and audio
// towers round activations and weights to bf16 and sum in fp32 with AVX512-BF16
// `vdpbf16ps` (CEmberBF16), about twice the fp32 GEMM throughput of OpenBLAS on these
// CPUs. Accuracy per tower is bounded in the tests (cosine ≥ 0.999 against fp32).

/// Arithmetic of the towers' linear layers.
public enum ComputePrecision: String, Sendable, CaseIterable {
    /// IEEE single precision throughout (the parity-tested default).
    case fp32
    /// bf16 products with fp32 sums in the text and audio linear layers; fp32 elsewhere.
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

    package init(_ weight: UnsafePointer<Float>, outFeatures: Int, inFeatures: Int) {
        self.outFeatures = outFeatures
        self.inFeatures = inFeatures
        packed = .allocate(capacity: ember_bf16_packed_count(Int32(outFeatures), Int32(inFeatures)))
        ember_bf16_pack(weight, Int32(outFeatures), Int32(inFeatures), packed)
    }

    deinit { packed.deallocate() }
}

/// UInt16 scratch `linearBF16` needs for `rows` rows of `inFeatures` inputs, in floats (for a ScratchArena).
package func bf16ScratchFloats(rows: Int, inFeatures: Int) -> Int {
    (ember_bf16_rows_count(Int32(rows), Int32(inFeatures)) + 1) / 2
}

/// `linear` in bf16: out (R, out) = bf16(x) · bf16(weight)ᵀ + bias with fp32 sums. x: (R, in),
/// out row stride `ldOut`; `scratch` holds `bf16ScratchFloats(rows:inFeatures:)` floats.
/// Row blocks split over `threads`; each element's sum is the same whatever the split.
package func linearBF16(
    _ x: UnsafePointer<Float>, rows: Int, inFeatures: Int, weight: BF16Weights, bias: UnsafePointer<Float>?,
    out: UnsafeMutablePointer<Float>, ldOut: Int? = nil, scratch: UnsafeMutablePointer<Float>, threads: Int = 1
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
        ember_bf16_gemm(xb, Int32(block.count), Int32(inFeatures), weight.packed, Int32(n), out + block.lowerBound * ld, Int32(ld))
        if let bias {
            for r in block {
                let row = out + r * ld
                for i in 0..<n { row[i] += bias[i] }
            }
        }
    }
}

/// `linear`, or `linearBF16` when the layer has bf16 weights (`bf16` non-nil, with `scratch`).
package func linear(
    _ x: UnsafePointer<Float>, rows: Int, inFeatures: Int,
    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, outFeatures: Int,
    out: UnsafeMutablePointer<Float>, ldOut: Int? = nil, bf16: BF16Weights?, scratch: UnsafeMutablePointer<Float>?, threads: Int = 1
) {
    if let bf16, let scratch {
        linearBF16(x, rows: rows, inFeatures: inFeatures, weight: bf16, bias: bias, out: out, ldOut: ldOut, scratch: scratch, threads: threads)
    } else {
        linear(x, rows: rows, inFeatures: inFeatures, weight: weight, bias: bias, outFeatures: outFeatures, out: out, ldOut: ldOut, threads: threads)
    }
}
