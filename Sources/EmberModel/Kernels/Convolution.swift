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

/// Dense 2-D convolution: out (Cout, N, Ho, Wo) = weight (Cout, Cin·k·k) · im2col(x) + bias.
/// x: (Cin, N, H, W); `columns` is scratch of Cin·k·k·N·Ho·Wo floats.
package func conv2d(
    _ x: UnsafePointer<Float>, inChannels: Int, images: Int, height: Int, width: Int,
    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, outChannels: Int,
    kernel: Int, stride: Int, padTop: Int, padLeft: Int, outHeight: Int, outWidth: Int,
    columns: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>, threads: Int = 1
) {
    im2col(x, channels: inChannels, images: images, height: height, width: width,
           kernel: kernel, stride: stride, padTop: padTop, padLeft: padLeft,
           outHeight: outHeight, outWidth: outWidth, columns: columns, threads: threads)
    let n = images * outHeight * outWidth
    gemm(m: outChannels, n: n, k: inChannels * kernel * kernel, a: weight, b: columns, c: out, threads: threads)
    if let bias { addChannelBias(out, channels: outChannels, spatial: n, bias: bias, threads: threads) }
}

/// 1×1 convolution: out (Cout, S) = weight (Cout, Cin) · x (Cin, S) + bias, S = N·H·W.
package func pointwiseConv(
    _ x: UnsafePointer<Float>, inChannels: Int, spatial: Int,
    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, outChannels: Int,
    out: UnsafeMutablePointer<Float>, threads: Int = 1
) {
    gemm(m: outChannels, n: spatial, k: inChannels, a: weight, b: x, c: out, threads: threads)
    if let bias { addChannelBias(out, channels: outChannels, spatial: spatial, bias: bias, threads: threads) }
}

/// Adds bias[c] to every value of channel c of x (C, S), in place.
package func addChannelBias(_ x: UnsafeMutablePointer<Float>, channels: Int, spatial: Int, bias: UnsafePointer<Float>, threads: Int = 1) {
    parallelChunks(channels, threads: threads, grain: max(1, (1 << 14) / max(spatial, 1))) { channels in
        for c in channels {
            let row = x + c * spatial
            let b = bias[c]
            for i in 0..<spatial { row[i] += b }
        }
    }
}

/// Depthwise convolution (groups = channels): x (C, N, H, W), weight (C, 1, k, k), bias (C),
/// out (C, N, Ho, Wo); zero padding `padTop`/`padLeft` before the image.
package func depthwiseConv(
    _ x: UnsafePointer<Float>, channels: Int, images: Int, height: Int, width: Int,
    weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
    kernel: Int, stride: Int, padTop: Int, padLeft: Int, outHeight: Int, outWidth: Int,
    out: UnsafeMutablePointer<Float>, threads: Int = 1
) {
    parallelChunks(channels, threads: threads) { channels in
        for c in channels {
            let w = weight + c * kernel * kernel
            let b = bias?[c] ?? 0
            for n in 0..<images {
                let source = x + (c * images + n) * height * width
                let target = out + (c * images + n) * outHeight * outWidth
                for oy in 0..<outHeight {
                    let line = target + oy * outWidth
                    for ox in 0..<outWidth { line[ox] = b }
                    for ky in 0..<kernel {
                        let iy = oy * stride - padTop + ky
                        if iy < 0 || iy >= height { continue }
                        let sourceLine = source + iy * width
                        for kx in 0..<kernel {
                            let wv = w[ky * kernel + kx]
                            // ox range with 0 <= ox*stride - padLeft + kx < width
                            let offset = kx - padLeft
                            let first = offset >= 0 ? 0 : (-offset + stride - 1) / stride
                            let last = min(outWidth - 1, (width - 1 - offset) / stride)
                            if first > last { continue }
                            if stride == 1 {
                                let s = sourceLine + offset
                                for ox in first...last { line[ox] += wv * s[ox] }
                            } else {
                                for ox in first...last { line[ox] += wv * sourceLine[ox * stride + offset] }
                            }
                        }
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
