import Testing
@testable import EmberModel

// The vision tower's AVX-512 kernels (CEmberBF16's ember_depthwise_conv and
// ember_pointwise_conv) against naive definitions, on shapes off their blocking.
// Depthwise: widths around 8 and 16 (the ymm and zmm paths and their masked tails), odd
// output rows (the two-row pass's tail), channel counts that are no multiple of 16, uneven
// padding, 1×1 images, k 1 to 7; also against the Swift twin. 1×1: output channels off the
// 8-row tile, columns off the 48-column tile and its 16-lane vectors, 1 to 300 inputs.

private func naiveDepthwise(_ x: [Float], c: Int, n: Int, h: Int, w: Int, weight: [Float], bias: [Float]?, k: Int, stride: Int,
                            padTop: Int, padLeft: Int, oh: Int, ow: Int) -> [Float] {
    var out = [Float](repeating: 0, count: c * n * oh * ow)
    for ch in 0..<c { for img in 0..<n { for y in 0..<oh { for xo in 0..<ow {
        var sum = Double(bias?[ch] ?? 0)
        for ky in 0..<k { for kx in 0..<k {
            let iy = y * stride - padTop + ky, ix = xo * stride - padLeft + kx
            guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
            sum += Double(x[((ch * n + img) * h + iy) * w + ix]) * Double(weight[(ch * k + ky) * k + kx])
        }}
        out[((ch * n + img) * oh + y) * ow + xo] = Float(sum)
    }}}}
    return out
}

@Suite("AVX-512 depthwise kernel", .enabled(if: depthwiseAVX512Available, "needs AVX-512"))
struct DepthwiseKernelTests {
    // (channels, images, height, width, kernel, stride, padTop, padLeft)
    static let shapes: [(Int, Int, Int, Int, Int, Int, Int, Int)] = [
        (17, 2, 9, 23, 3, 1, 1, 1), (3, 1, 7, 7, 5, 1, 2, 2), (5, 2, 8, 8, 3, 1, 1, 1), (3, 1, 11, 9, 3, 1, 1, 1),
        (19, 1, 14, 14, 5, 2, 1, 1), (2, 3, 13, 37, 5, 2, 2, 2), (3, 1, 5, 33, 3, 2, 0, 0), (4, 1, 1, 1, 3, 1, 1, 1),
        (2, 1, 6, 40, 7, 1, 3, 3), (3, 2, 10, 17, 1, 2, 0, 0), (1, 1, 3, 70, 3, 2, 1, 0), (33, 1, 12, 5, 5, 2, 2, 1),
        (2, 2, 4, 16, 3, 1, 0, 2), (2, 1, 9, 31, 7, 2, 3, 3),
    ]

    @Test("equals the naive depthwise convolution (bias, no bias, ReLU6) and the Swift twin; channel splits equal one call",
          arguments: shapes)
    func matches(shape: (Int, Int, Int, Int, Int, Int, Int, Int)) {
        let (c, n, h, w, k, stride, padTop, padLeft) = shape
        let oh = SamePadding(input: h, kernel: k, stride: stride).output, ow = SamePadding(input: w, kernel: k, stride: stride).output
        let x = pseudoRandom(c * n * h * w, seed: 81), weight = pseudoRandom(c * k * k, seed: 82), bias = pseudoRandom(c, seed: 83)
        let scaled = x.map { $0 * 20 }  // values beyond 6 and below 0 for the clamp
        var scratch = [Float](repeating: .nan, count: 3 * depthwisePaddedPlane(outHeight: oh, outWidth: ow, kernel: k, stride: stride))
        func run(_ input: [Float], bias: [Float]?, relu6: Bool, threads: Int = 1, swift: Bool = false) -> [Float] {
            var out = [Float](repeating: .nan, count: c * n * oh * ow)
            if swift {
                depthwiseConvSwift(input, channels: c, images: n, height: h, width: w, weight: weight, bias: bias, kernel: k, stride: stride,
                                   padTop: padTop, padLeft: padLeft, outHeight: oh, outWidth: ow, relu6: relu6, scratch: &scratch, out: &out,
                                   threads: threads)
            } else {
                depthwiseConv(input, channels: c, images: n, height: h, width: w, weight: weight, bias: bias, kernel: k, stride: stride,
                              padTop: padTop, padLeft: padLeft, outHeight: oh, outWidth: ow, relu6: relu6, scratch: &scratch, out: &out,
                              threads: threads)
            }
            return out
        }
        for (input, b, relu6) in [(x, Optional(bias), false), (x, nil, false), (scaled, Optional(bias), true)] {
            let label = "depthwise \(shape) bias \(b != nil) relu6 \(relu6)"
            var expected = naiveDepthwise(input, c: c, n: n, h: h, w: w, weight: weight, bias: b, k: k, stride: stride,
                                          padTop: padTop, padLeft: padLeft, oh: oh, ow: ow)
            if relu6 { expected = expected.map { min(max($0, 0), 6) } }
            let got = run(input, bias: b, relu6: relu6)
            expectClose(got, expected, tolerance: relu6 ? 1e-4 : 1e-5, label)
            expectClose(got, run(input, bias: b, relu6: relu6, swift: true), tolerance: relu6 ? 1e-4 : 1e-5, label + " vs Swift")
            for threads in [2, 3] { expectIdentical(run(input, bias: b, relu6: relu6, threads: threads), got, label + " threads \(threads)") }
        }
        // A NaN input stays NaN through the clamp, in the outputs whose taps read it, as in the definition.
        var poisoned = scaled
        poisoned[poisoned.count / 2] = .nan
        let nanGot = run(poisoned, bias: bias, relu6: true).map(\.isNaN)
        let nanExpected = naiveDepthwise(poisoned, c: c, n: n, h: h, w: w, weight: weight, bias: bias, k: k, stride: stride,
                                         padTop: padTop, padLeft: padLeft, oh: oh, ow: ow).map(\.isNaN)
        #expect(nanGot == nanExpected, "NaN outputs \(shape): \(nanGot.filter { $0 }.count), expected \(nanExpected.filter { $0 }.count)")
    }
}

private func naivePointwise(_ x: [Float], cin: Int, columns: Int, weight: [Float], bias: [Float]?, cout: Int) -> [Float] {
    var out = [Float](repeating: 0, count: cout * columns)
    for o in 0..<cout {
        for j in 0..<columns {
            var sum = Double(bias?[o] ?? 0)
            for k in 0..<cin { sum += Double(weight[o * cin + k]) * Double(x[k * columns + j]) }
            out[o * columns + j] = Float(sum)
        }
    }
    return out
}

@Suite("AVX-512 1×1 convolution kernel", .enabled(if: depthwiseAVX512Available, "needs AVX-512"))
struct PointwiseKernelTests {
    // (input channels, output channels, columns)
    @Test("equals the naive product (bias, no bias, ReLU6, NaN kept); column splits equal one call",
          arguments: [(1, 1, 1), (3, 5, 17), (27, 32, 97), (16, 13, 48), (40, 9, 49), (7, 17, 200), (144, 24, 95), (5, 8, 16), (300, 11, 33)])
    func matches(shape: (Int, Int, Int)) {
        let (cin, cout, columns) = shape
        let x = pseudoRandom(cin * columns, seed: 91), weight = pseudoRandom(cout * cin, seed: 92), bias = pseudoRandom(cout, seed: 93)
        func run(_ input: [Float], bias: [Float]?, relu6: Bool, threads: Int = 1) -> [Float] {
            var out = [Float](repeating: .nan, count: cout * columns)
            pointwiseConv(input, inChannels: cin, spatial: columns, weight: weight, bias: bias, outChannels: cout, relu6: relu6, out: &out,
                          threads: threads)
            return out
        }
        let scaled = x.map { $0 * 8 }  // sums beyond 6 and below 0 for the clamp
        for (input, b, relu6) in [(x, Optional(bias), false), (x, nil, false), (scaled, Optional(bias), true)] {
            let label = "1×1 \(shape) bias \(b != nil) relu6 \(relu6)"
            var expected = naivePointwise(input, cin: cin, columns: columns, weight: weight, bias: b, cout: cout)
            if relu6 { expected = expected.map { min(max($0, 0), 6) } }
            let got = run(input, bias: b, relu6: relu6)
            expectClose(got, expected, tolerance: 1e-4, label)
            for threads in [2, 3] { expectIdentical(run(input, bias: b, relu6: relu6, threads: threads), got, label + " threads \(threads)") }
        }
        var poisoned = scaled
        poisoned[poisoned.count / 2] = .nan  // every output of that column is NaN, clamp included
        let clamped = run(poisoned, bias: bias, relu6: true)
        let nanColumns = Set(clamped.indices.filter { clamped[$0].isNaN }.map { $0 % columns })
        #expect(clamped.filter(\.isNaN).count == cout, "NaN outputs \(shape)")
        #expect(nanColumns == [(poisoned.count / 2) % columns], "NaN columns \(shape): \(nanColumns)")
    }
}

@Suite("Expand + depthwise by bands", .enabled(if: depthwiseAVX512Available, "needs AVX-512"))
struct ExpandDepthwiseTests {
    // (input channels, expanded channels, images, size, kernel, stride): one band per image
    // (small planes), several bands with overlapping input rows (wide planes), odd sizes
    // (planes of at least 512 values: `expandDepthwiseFits`).
    @Test("equals the 1×1 convolution then the depthwise convolution bit for bit, whatever the threads",
          arguments: [(3, 5, 2, 23, 3, 1), (4, 17, 1, 25, 5, 2), (16, 96, 2, 112, 3, 2), (24, 144, 1, 56, 5, 2), (24, 144, 1, 57, 3, 1),
                      (2, 3, 3, 31, 3, 2), (5, 40, 1, 30, 7, 1)])
    func matches(shape: (Int, Int, Int, Int, Int, Int)) {
        let (cin, channels, n, size, k, stride) = shape
        let pad = SamePadding(input: size, kernel: k, stride: stride), o = pad.output
        let x = pseudoRandom(cin * n * size * size, seed: 101), expand = pseudoRandom(channels * cin, seed: 102)
        let expandBias = pseudoRandom(channels, seed: 103), weight = pseudoRandom(channels * k * k, seed: 104), bias = pseudoRandom(channels, seed: 105)
        var expanded = [Float](repeating: .nan, count: channels * n * size * size), expected = [Float](repeating: .nan, count: channels * n * o * o)
        var planes = [Float](repeating: .nan, count: depthwisePaddedPlane(outHeight: o, outWidth: o, kernel: k, stride: stride))
        pointwiseConv(x, inChannels: cin, spatial: n * size * size, weight: expand, bias: expandBias, outChannels: channels, relu6: true,
                      out: &expanded)
        depthwiseConv(expanded, channels: channels, images: n, height: size, width: size, weight: weight, bias: bias, kernel: k, stride: stride,
                      padTop: pad.before, padLeft: pad.before, outHeight: o, outWidth: o, relu6: true, scratch: &planes, out: &expected)
        let rows = expandDepthwiseBandRows(channels: channels, width: size, kernel: k, stride: stride, outHeight: o)
        #expect(expandDepthwiseFits(channels: channels, height: size, width: size, kernel: k))
        for threads in [1, 2, 3] {
            var bands = [Float](repeating: .nan, count: threads * expandDepthwiseBandFloats)
            var got = [Float](repeating: .nan, count: channels * n * o * o)
            expandDepthwiseConv(x, inChannels: cin, images: n, height: size, width: size, expandWeight: expand, expandBias: expandBias,
                                channels: channels, weight: weight, bias: bias, kernel: k, stride: stride, padTop: pad.before,
                                padLeft: pad.before, outHeight: o, outWidth: o, relu6: true, scratch: &bands, out: &got, threads: threads)
            expectIdentical(got, expected, "expand + depthwise \(shape), \(rows) rows a band, threads \(threads)")
        }
    }
}
