import CEmberBF16

// A 1-D convolution in bf16 without im2col. With the weight's columns ordered (kernel, in)
// instead of the checkpoint's (in, kernel), the window an output step reads from time-major
// input rows is `kernel` consecutive rows, that is kernel × channels consecutive elements:
// the product reads it in place from zero-padded input rows at a row stride of
// stride × channels (`ember_bf16_gemm_rows_*`), and no column matrix is written or rounded.

extension BF16Weights {
    /// A Conv1d weight (out, in, kernel) as PyTorch stores it, packed with its columns in
    /// (kernel, in) order for `conv1dBF16`.
    package convenience init(conv1d weight: [Float], outChannels: Int, inChannels: Int, kernel: Int) {
        precondition(weight.count == outChannels * inChannels * kernel, "Conv1d weight of \(weight.count) values is not \(outChannels)×\(inChannels)×\(kernel)")
        var permuted = [Float](repeating: 0, count: weight.count)
        for o in 0..<outChannels {
            for c in 0..<inChannels {
                for j in 0..<kernel { permuted[(o * kernel + j) * inChannels + c] = weight[(o * inChannels + c) * kernel + j] }
            }
        }
        self.init(permuted, outFeatures: outChannels, inFeatures: kernel * inChannels)
    }
}

/// A signal of `frames` steps as time-major bf16 rows of `channels`, with `padding` zero
/// rows before and after: the input (and output) of `conv1dBF16`. `channels` must be even,
/// so every row starts on a (k, k + 1) pair as the kernel reads them.
package struct PaddedTimeRows {
    let base: UnsafeMutablePointer<UInt16>
    let channels: Int
    let frames: Int
    let padding: Int

    /// UInt16 elements the rows take.
    package static func elements(channels: Int, frames: Int, padding: Int) -> Int { (frames + 2 * padding) * channels }

    /// Lays the rows out at `base` and zeroes the padding rows.
    package init(_ base: UnsafeMutablePointer<UInt16>, channels: Int, frames: Int, padding: Int) {
        precondition(channels % 2 == 0, "bf16 time rows need an even channel count, got \(channels)")
        (self.base, self.channels, self.frames, self.padding) = (base, channels, frames, padding)
        base.update(repeating: 0, count: padding * channels)
        row(frames).update(repeating: 0, count: padding * channels)
    }

    /// Row t of the signal, t in −padding ..< frames + padding.
    func row(_ t: Int) -> UnsafeMutablePointer<UInt16> { base + (t + padding) * channels }
}

/// Fills `rows` with x (channels × frames, channel-major as a log-mel is stored) transposed
/// and rounded to bf16.
package func timeRowsBF16(channelMajor x: UnsafePointer<Float>, into rows: PaddedTimeRows, threads: Int = 1) {
    parallelChunks(rows.frames, threads: threads, grain: 64) { times in
        ember_bf16_convert_transposed(x + times.lowerBound, Int32(rows.channels), Int32(times.count), Int32(rows.frames), rows.row(times.lowerBound),
                                      Int32(rows.channels))
    }
}

/// Output steps of a convolution over `input` with this kernel size and stride.
package func conv1dOutputLength(_ input: PaddedTimeRows, kernel: Int, stride: Int) -> Int {
    (input.frames + 2 * input.padding - kernel) / stride + 1
}

/// out (outLength, Cout) = act(W ∗ input + bias) with fp32 sums: step t reads the window of
/// rows t·stride − padding ..< t·stride − padding + kernel. `weight` from
/// `BF16Weights(conv1d:…)`. Row blocks split over `threads`; every output is the same dot
/// product whatever the split.
package func conv1dBF16(
    _ input: PaddedTimeRows, stride: Int, weight: BF16Weights, bias: UnsafePointer<Float>?, activation: LinearActivation,
    out: UnsafeMutablePointer<Float>, threads: Int = 1
) {
    let length = conv1dOutputLength(input, kernel: weight.inFeatures / input.channels, stride: stride)
    conv1dBF16Rows(input, stride: stride, weight: weight, length: length, threads: threads) { first, count, rows, lda in
        ember_bf16_gemm_rows_epilogue(rows, lda, Int32(count), Int32(weight.inFeatures), weight.packed, Int32(weight.outFeatures),
                                      out + first * weight.outFeatures, Int32(weight.outFeatures), bias, activation.bf16Flag)
    }
}

/// `conv1dBF16` whose output is rounded to bf16 into the rows of `output` (Cout channels,
/// outLength frames): the next convolution's input, without an fp32 round trip.
package func conv1dBF16(
    _ input: PaddedTimeRows, stride: Int, weight: BF16Weights, bias: UnsafePointer<Float>?, activation: LinearActivation,
    into output: PaddedTimeRows, threads: Int = 1
) {
    let length = conv1dOutputLength(input, kernel: weight.inFeatures / input.channels, stride: stride)
    precondition(output.channels == weight.outFeatures && output.frames == length,
                 "output rows \(output.frames)×\(output.channels) for a \(length)×\(weight.outFeatures) convolution")
    conv1dBF16Rows(input, stride: stride, weight: weight, length: length, threads: threads) { first, count, rows, lda in
        ember_bf16_gemm_rows_to_bf16(rows, lda, Int32(count), Int32(weight.inFeatures), weight.packed, Int32(weight.outFeatures),
                                     output.row(first), Int32(output.channels), bias, activation.bf16Flag)
    }
}

/// Splits the output steps over threads and hands each block's first input row and row stride to `product`.
private func conv1dBF16Rows(
    _ input: PaddedTimeRows, stride: Int, weight: BF16Weights, length: Int, threads: Int,
    _ product: (_ first: Int, _ count: Int, _ rows: UnsafePointer<UInt16>, _ lda: Int) -> Void
) {
    precondition(weight.inFeatures % input.channels == 0, "a \(weight.inFeatures)-input convolution on \(input.channels)-channel rows")
    let kernel = weight.inFeatures / input.channels
    precondition(kernel <= input.frames + 2 * input.padding, "kernel \(kernel) longer than the padded signal")
    let lda = stride * input.channels
    parallelChunks(length, threads: threads, grain: 32) { steps in
        product(steps.lowerBound, steps.count, input.row(steps.lowerBound * stride - input.padding), lda)
    }
}
