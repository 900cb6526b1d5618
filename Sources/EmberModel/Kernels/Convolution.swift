import CEmberBF16

// Shape legend: N images, C channels, H×W spatial. Activations of the CNN are stored
// channel-major (C, N, H, W) so a 1×1 convolution over the whole batch is one GEMM
// with n = N·H·W. `threads`: see Parallel.swift (each kernel splits along an axis whose
// elements are computed independently, so results do not depend on it).

/// TensorFlow "SAME" padding as `efficientnet_lite_pytorch` computes it
/// (`Conv2dStaticSamePadding`): output = ceil(input / stride), total padding
/// max((output − 1)·stride + kernel − input, 0), the smaller half on top/left.
package struct SamePadding: Sendable, Equatable {
    public let output: Int
    public let before: Int

    public init(input: Int, kernel: Int, stride: Int) {
        output = (input + stride - 1) / stride
        let total = max((output - 1) * stride + kernel - input, 0)
        before = total / 2
    }
}

/// Unfolds x (C, N, H, W) into columns (C·kh·kw, N·Ho·Wo) for a strided convolution with
/// `padTop`/`padLeft` zeros before the image (and whatever the output size implies after).
/// Row order (c, ky, kx) matches a PyTorch weight (Cout, C, kh, kw) flattened.
package func im2col(
    _ x: UnsafePointer<Float>, channels: Int, images: Int, height: Int, width: Int,
    kernel: Int, stride: Int, padTop: Int, padLeft: Int, outHeight: Int, outWidth: Int,
    columns: UnsafeMutablePointer<Float>, threads: Int = 1
) {
    let plane = outHeight * outWidth
    let rowLength = images * plane
    parallelChunks(channels * kernel * kernel, threads: threads) { rows in
        for r in rows {
            let c = r / (kernel * kernel), ky = r / kernel % kernel, kx = r % kernel
            let row = columns + r * rowLength
            for n in 0..<images {
                let source = x + (c * images + n) * height * width
                let target = row + n * plane
                for oy in 0..<outHeight {
                    let iy = oy * stride - padTop + ky
                    let line = target + oy * outWidth
                    if iy < 0 || iy >= height {
                        for ox in 0..<outWidth { line[ox] = 0 }
                        continue
                    }
                    let sourceLine = source + iy * width
                    for ox in 0..<outWidth {
                        let ix = ox * stride - padLeft + kx
                        line[ox] = (ix >= 0 && ix < width) ? sourceLine[ix] : 0
                    }
                }
            }
        }
    }
}

/// Dense 2-D convolution: out (Cout, N, Ho, Wo) = weight (Cout, Cin·k·k) · im2col(x) + bias,
/// clamped to [0, 6] when `relu6`. x: (Cin, N, H, W); `columns` is scratch of Cin·k·k·N·Ho·Wo floats.
package func conv2d(
    _ x: UnsafePointer<Float>, inChannels: Int, images: Int, height: Int, width: Int,
    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, outChannels: Int,
    kernel: Int, stride: Int, padTop: Int, padLeft: Int, outHeight: Int, outWidth: Int,
    relu6: Bool = false, columns: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>, threads: Int = 1
) {
    im2col(x, channels: inChannels, images: images, height: height, width: width,
           kernel: kernel, stride: stride, padTop: padTop, padLeft: padLeft,
           outHeight: outHeight, outWidth: outWidth, columns: columns, threads: threads)
    pointwiseConv(columns, inChannels: inChannels * kernel * kernel, spatial: images * outHeight * outWidth, weight: weight, bias: bias,
                  outChannels: outChannels, relu6: relu6, out: out, threads: threads)
}

/// 1×1 convolution: out (Cout, S) = weight (Cout, Cin) · x (Cin, S) + bias, S = N·H·W,
/// clamped to [0, 6] when `relu6`. On AVX-512 CPUs the C kernel `ember_pointwise_conv`
/// (bias and clamp in its store; column strips split over `threads`): on the vision
/// tower's shapes it matched or beat OpenBLAS's sgemm alone, which also needs a zeroing
/// pass and a bias pass over the output. Elsewhere `gemm`, then `addChannelBias`.
package func pointwiseConv(
    _ x: UnsafePointer<Float>, inChannels: Int, spatial: Int,
    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, outChannels: Int,
    relu6: Bool = false, out: UnsafeMutablePointer<Float>, threads: Int = 1
) {
    guard depthwiseAVX512Available else {
        gemm(m: outChannels, n: spatial, k: inChannels, a: weight, b: x, c: out, threads: threads)
        addChannelBias(out, channels: outChannels, spatial: spatial, bias: bias, relu6: relu6, threads: threads)
        return
    }
    // Whole strips of the kernel's 48-column tile per chunk (each column's sum is the same in any tile).
    let strip = 48, strips = (spatial + strip - 1) / strip
    parallelChunks(strips, threads: threads) { chunk in
        let first = chunk.lowerBound * strip, columns = min(chunk.upperBound * strip, spatial) - first
        ember_pointwise_conv(x + first, Int32(inChannels), Int32(columns), spatial, weight, bias, Int32(outChannels), relu6 ? 1 : 0,
                             out + first, spatial)
    }
}

/// Adds bias[c] (when given) to every value of channel c of x (C, S), in place, then clamps
/// to [0, 6] when `relu6` (one pass over the output instead of two).
package func addChannelBias(
    _ x: UnsafeMutablePointer<Float>, channels: Int, spatial: Int, bias: UnsafePointer<Float>?, relu6: Bool = false, threads: Int = 1
) {
    guard bias != nil || relu6 else { return }
    parallelChunks(channels, threads: threads, grain: max(1, (1 << 14) / max(spatial, 1))) { channels in
        for c in channels {
            let row = x + c * spatial
            let b = bias?[c] ?? 0
            if relu6 {
                for i in 0..<spatial { row[i] = min(max(row[i] + b, 0), 6) }
            } else {
                for i in 0..<spatial { row[i] += b }
            }
        }
    }
}

/// Floats of one zero-padded input plane `depthwiseConv` works on, per worker.
package func depthwisePaddedPlane(outHeight: Int, outWidth: Int, kernel: Int, stride: Int) -> Int {
    let rows = (outHeight - 1) * stride + kernel
    let columns = stride * ((outWidth + 7) / 8 * 8) + kernel
    return rows * columns
}

/// Depthwise convolution (groups = channels): x (C, N, H, W), weight (C, 1, k, k), bias (C),
/// out (C, N, Ho, Wo); zero padding `padTop`/`padLeft` before the image; `relu6` clamps
/// the result to [0, 6]. Stride 1 or 2. Channels split over `threads`. On AVX-512 CPUs
/// (odd k ≤ 7) the C kernel `ember_depthwise_conv` runs (masked loads at the borders, no
/// padded copy, fused multiply-adds); elsewhere `depthwiseConvSwift`, which uses `scratch`.
package func depthwiseConv(
    _ x: UnsafePointer<Float>, channels: Int, images: Int, height: Int, width: Int,
    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
    kernel: Int, stride: Int, padTop: Int, padLeft: Int, outHeight: Int, outWidth: Int,
    relu6: Bool = false, scratch: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>, threads: Int = 1
) {
    precondition(stride == 1 || stride == 2, "depthwise stride \(stride)")
    guard depthwiseAVX512Available, kernel % 2 == 1, kernel <= 7 else {
        depthwiseConvSwift(x, channels: channels, images: images, height: height, width: width, weight: weight, bias: bias,
                           kernel: kernel, stride: stride, padTop: padTop, padLeft: padLeft, outHeight: outHeight, outWidth: outWidth,
                           relu6: relu6, scratch: scratch, out: out, threads: threads)
        return
    }
    let inPlane = images * height * width, outPlane = images * outHeight * outWidth
    parallelChunks(channels, threads: threads) { channels in
        ember_depthwise_conv(x + channels.lowerBound * inPlane, Int32(channels.count), Int32(images), Int32(height), Int32(width),
                             weight + channels.lowerBound * kernel * kernel, bias.map { $0 + channels.lowerBound },
                             Int32(kernel), Int32(stride), Int32(padTop), Int32(padLeft), Int32(outHeight), Int32(outWidth),
                             relu6 ? 1 : 0, out + channels.lowerBound * outPlane)
    }
}

/// Floats of one worker's band for `expandDepthwiseConv`: 768 KB, so a band of the expanded
/// activations stays in L2 between the two kernels (vision bf16 CPU time per call, 1 thread:
/// 64 K floats 3% slower than 192 K, 256 K the same).
package let expandDepthwiseBandFloats = 192 * 1024

/// Output rows per band of `expandDepthwiseConv`: as many as fit the band's input rows
/// ((rows − 1)·stride + k of them, `channels` × `width` each), at least one.
package func expandDepthwiseBandRows(channels: Int, width: Int, kernel: Int, stride: Int, outHeight: Int) -> Int {
    let inputRows = expandDepthwiseBandFloats / max(channels * width, 1)
    return min(max(1, (inputRows - kernel) / stride + 1), outHeight)
}

/// Whether `expandDepthwiseConv` runs for a layer: AVX-512, a band of at least one output
/// row fits the worker's band, and planes of at least 512 values (bands are cut per image:
/// a 7×7 or 14×14 plane leaves the expand kernel's 48-column tiles part empty, and fp32
/// vision was about 2% slower with those fused too).
package func expandDepthwiseFits(channels: Int, height: Int, width: Int, kernel: Int) -> Bool {
    depthwiseAVX512Available && kernel % 2 == 1 && kernel <= 7 && channels * width * kernel <= expandDepthwiseBandFloats
        && height * width >= 512
}

/// An MBConv block's expand 1×1 convolution (+ bias, ReLU6) followed by its depthwise
/// convolution, by bands of output rows of one image: each band's expanded rows are
/// computed into the worker's `scratch` (`expandDepthwiseBandFloats` floats per worker)
/// and read back from cache, instead of the whole expanded tensor going out to memory and
/// back. Rows two bands share are computed twice, by the same kernels, so the output equals
/// `pointwiseConv` then `depthwiseConv` bit for bit (and does not depend on `threads`).
/// x (Cin, N, H, W), expandWeight (channels, Cin), weight (channels, 1, k, k), out
/// (channels, N, Ho, Wo). Only when `expandDepthwiseFits`.
package func expandDepthwiseConv(
    _ x: UnsafePointer<Float>, inChannels: Int, images: Int, height: Int, width: Int,
    expandWeight: UnsafePointer<Float>, expandBias: UnsafePointer<Float>?, channels: Int,
    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, kernel: Int, stride: Int, padTop: Int, padLeft: Int,
    outHeight: Int, outWidth: Int, relu6: Bool = false, scratch: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>,
    threads: Int = 1
) {
    precondition(expandDepthwiseFits(channels: channels, height: height, width: width, kernel: kernel), "expandDepthwiseConv on a layer expandDepthwiseFits rejects")
    let rows = expandDepthwiseBandRows(channels: channels, width: width, kernel: kernel, stride: stride, outHeight: outHeight)
    let bandsPerImage = (outHeight + rows - 1) / rows
    parallelChunks(images * bandsPerImage, threads: threads) { units, worker in
        let band = scratch + worker * expandDepthwiseBandFloats
        for unit in units {
            let n = unit / bandsPerImage, first = unit % bandsPerImage * rows, last = min(first + rows, outHeight)
            // Input rows the band's outputs read, inside the image (the rest is padding).
            let top = max(0, first * stride - padTop), bottom = min(height, (last - 1) * stride - padTop + kernel)
            let inputRows = max(0, bottom - top)
            if inputRows > 0 {
                ember_pointwise_conv(x + (n * height + top) * width, Int32(inChannels), Int32(inputRows * width), images * height * width,
                                     expandWeight, expandBias, Int32(channels), 1, band, inputRows * width)
            }
            ember_depthwise_conv_strided(band, inputRows * width, Int32(channels), Int32(inputRows), Int32(width), weight, bias,
                                         Int32(kernel), Int32(stride), Int32(padTop + top - first * stride), Int32(padLeft),
                                         Int32(last - first), Int32(outWidth), relu6 ? 1 : 0,
                                         out + (n * outHeight + first) * outWidth, images * outHeight * outWidth)
        }
    }
}

/// Whether `depthwiseConv` runs the AVX-512 C kernel on this CPU.
package let depthwiseAVX512Available = ember_depthwise_available() != 0

/// `depthwiseConv` in Swift, for CPUs without AVX-512 (and the tests' twin of the C kernel).
/// `scratch` holds `min(threads, C)` padded planes (`depthwisePaddedPlane`): each plane is
/// copied once into a zero border, then eight outputs at a time sum bias + Σ w·x over the
/// k×k taps in registers, taps in row order.
package func depthwiseConvSwift(
    _ x: UnsafePointer<Float>, channels: Int, images: Int, height: Int, width: Int,
    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
    kernel: Int, stride: Int, padTop: Int, padLeft: Int, outHeight: Int, outWidth: Int,
    relu6: Bool = false, scratch: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>, threads: Int = 1
) {
    precondition(stride == 1 || stride == 2, "depthwise stride \(stride)")
    let plane = depthwisePaddedPlane(outHeight: outHeight, outWidth: outWidth, kernel: kernel, stride: stride)
    let paddedRows = (outHeight - 1) * stride + kernel, paddedWidth = plane / paddedRows
    parallelChunks(channels, threads: threads) { channels, worker in
        let padded = scratch + worker * plane
        for c in channels {
            let w = weight + c * kernel * kernel
            let b = Lanes(repeating: bias?[c] ?? 0)
            for n in 0..<images {
                let source = x + (c * images + n) * height * width
                let target = out + (c * images + n) * outHeight * outWidth
                // Zero border, then the image at (padTop, padLeft); rows or columns past the padded extent are never read.
                padded.update(repeating: 0, count: plane)
                for y in max(0, -padTop)..<min(height, paddedRows - padTop) {
                    let columns = min(width, paddedWidth - padLeft)
                    (padded + (y + padTop) * paddedWidth + padLeft).update(from: source + y * width, count: columns)
                }
                for oy in 0..<outHeight {
                    var ox = 0
                    while ox < outWidth {
                        var sum = b
                        for ky in 0..<kernel {
                            let row = UnsafeRawPointer(padded + (oy * stride + ky) * paddedWidth + ox * stride)
                            for kx in 0..<kernel {
                                let v = stride == 1 ? row.loadUnaligned(fromByteOffset: kx * 4, as: Lanes.self)
                                    : row.loadUnaligned(fromByteOffset: kx * 4, as: SIMD16<Float>.self).evenHalf
                                sum += Lanes(repeating: w[ky * kernel + kx]) * v
                            }
                        }
                        if relu6 { sum = clamp(sum, 0, 6) }
                        let line = target + oy * outWidth + ox
                        if ox + 8 <= outWidth {
                            UnsafeMutableRawPointer(line).storeBytes(of: sum, as: Lanes.self)
                        } else {
                            for i in 0..<(outWidth - ox) { line[i] = sum[i] }
                        }
                        ox += 8
                    }
                }
            }
        }
    }
}

/// Global average pooling: x (C, N, S) → out (N, C).
package func globalAveragePool(_ x: UnsafePointer<Float>, channels: Int, images: Int, spatial: Int, out: UnsafeMutablePointer<Float>) {
    let scale = 1 / Float(spatial)
    for c in 0..<channels {
        for n in 0..<images {
            let plane = x + (c * images + n) * spatial
            var sum: Float = 0
            for i in 0..<spatial { sum += plane[i] }
            out[n * channels + c] = sum * scale
        }
    }
}

/// Unfolds a 1-D signal for `conv1d`: element (c, t) of x is `x[c·channelStride + t·timeStride]`
/// (so (C, T) and (T, C) layouts both work); columns are (To, C·k) with row order (c, j)
/// matching a PyTorch weight (Cout, C, k). Zero padding `padding` on both sides.
package func im2col1d(
    _ x: UnsafePointer<Float>, channels: Int, length: Int, channelStride: Int, timeStride: Int,
    kernel: Int, stride: Int, padding: Int, outLength: Int, columns: UnsafeMutablePointer<Float>, threads: Int = 1
) {
    let rowLength = channels * kernel
    parallelChunks(outLength, threads: threads, grain: 16) { times in
        for t in times {
            let row = columns + t * rowLength
            for c in 0..<channels {
                for j in 0..<kernel {
                    let source = t * stride - padding + j
                    row[c * kernel + j] = (source >= 0 && source < length) ? x[c * channelStride + source * timeStride] : 0
                }
            }
        }
    }
}
