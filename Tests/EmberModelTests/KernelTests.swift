import Foundation
import Testing
@testable import EmberModel

// Naive twins of every optimized kernel, compared on odd shapes.

private func naiveConv2d(_ x: [Float], c: Int, n: Int, h: Int, w: Int, weight: [Float], bias: [Float], cout: Int,
                         k: Int, stride: Int, padTop: Int, padLeft: Int, oh: Int, ow: Int, groups: Int) -> [Float] {
    // x (C, N, H, W) → out (Cout, N, Oh, Ow); weight (Cout, C/groups, k, k)
    var out = [Float](repeating: 0, count: cout * n * oh * ow)
    let cinPerGroup = c / groups, coutPerGroup = cout / groups
    for o in 0..<cout {
        let g = o / coutPerGroup
        for img in 0..<n { for y in 0..<oh { for xo in 0..<ow {
            var sum = Double(bias[o])
            for ci in 0..<cinPerGroup { for ky in 0..<k { for kx in 0..<k {
                let iy = y * stride - padTop + ky, ix = xo * stride - padLeft + kx
                guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                let channel = g * cinPerGroup + ci
                sum += Double(x[((channel * n + img) * h + iy) * w + ix]) * Double(weight[((o * cinPerGroup + ci) * k + ky) * k + kx])
            }}}
            out[((o * n + img) * oh + y) * ow + xo] = Float(sum)
        }}}
    }
    return out
}

@Suite("Kernels")
struct KernelTests {
    @Test("layer norm matches the definition", arguments: [(1, 1), (3, 7), (5, 384)])
    func layerNormMatches(shape: (Int, Int)) {
        let (rows, width) = shape
        let x = pseudoRandom(rows * width, seed: 1).map { $0 * 3 + 0.5 }
        let gamma = pseudoRandom(width, seed: 2), beta = pseudoRandom(width, seed: 3)
        var out = [Float](repeating: 0, count: x.count)
        layerNorm(x, rows: rows, width: width, gamma: gamma, beta: beta, eps: 1e-5, out: &out)
        var expected = [Float]()
        for r in 0..<rows {
            let row = x[(r * width)..<((r + 1) * width)].map(Double.init)
            let mean = row.reduce(0, +) / Double(width)
            let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(width)
            for i in 0..<width { expected.append(Float((row[i] - mean) / (variance + 1e-5).squareRoot()) * gamma[i] + beta[i]) }
        }
        expectClose(out, expected, tolerance: 1e-4, "layerNorm \(shape)")
    }

    @Test("GELU (erf), ReLU6 and softmax give known values")
    func activations() {
        var g: [Float] = [-3, -1, 0, 0.5, 2]
        geluErf(&g, count: g.count)
        // torch.nn.functional.gelu(torch.tensor([-3., -1., 0., .5, 2.]))
        expectClose(g, [-0.0040496, -0.1586553, 0, 0.3457312, 1.9544997], tolerance: 1e-6, "gelu")
        var r: [Float] = [-1, 0, 3, 6, 7.5]
        relu6(&r, count: r.count)
        #expect(r == [0, 0, 3, 6, 6])
        var s: [Float] = [1, 2, 3, 1000, 1000, -Float.infinity]
        softmaxRows(&s, rows: 2, width: 3)
        expectClose(s, [0.09003057, 0.24472847, 0.66524096, 0.5, 0.5, 0], tolerance: 1e-6, "softmax")
    }

    @Test("packed attention equals per-sequence naive attention", arguments: [[1], [5, 3], [7, 1, 4]])
    func attentionMatches(lengths: [Int]) {
        let heads = 3, headDim = 5, width = heads * headDim, stride = 3 * width + 2  // extra columns: stride ≠ 3D
        let tokens = lengths.reduce(0, +)
        let qkv = pseudoRandom(tokens * stride, seed: 9)
        var starts: [Int] = [], offset = 0
        for l in lengths { starts.append(offset); offset += l }
        var scores = [Float](repeating: 0, count: lengths.max()! * lengths.max()!)
        var out = [Float](repeating: .nan, count: tokens * width)
        let scale = 1 / Float(headDim).squareRoot()
        attention(qkv: qkv, stride: stride, heads: heads, headDim: headDim, starts: starts, lengths: lengths, scale: scale, scores: &scores, out: &out)

        var expected = [Float](repeating: 0, count: tokens * width)
        for (start, length) in zip(starts, lengths) { for h in 0..<heads { for i in 0..<length {
            let q = (0..<headDim).map { qkv[(start + i) * stride + h * headDim + $0] }
            var logits = (0..<length).map { j in
                (0..<headDim).reduce(0.0) { $0 + Double(q[$1]) * Double(qkv[(start + j) * stride + width + h * headDim + $1]) } * Double(scale)
            }
            let peak = logits.max()!
            logits = logits.map { exp($0 - peak) }
            let total = logits.reduce(0, +)
            for e in 0..<headDim {
                expected[(start + i) * width + h * headDim + e] = Float((0..<length).reduce(0.0) {
                    $0 + logits[$1] / total * Double(qkv[(start + $1) * stride + 2 * width + h * headDim + e])
                })
            }
        }}}
        expectClose(out, expected, tolerance: 1e-5, "attention \(lengths)")
    }

    @Test("TF SAME padding matches efficientnet_lite_pytorch's rule")
    func samePadding() {
        // (input, kernel, stride) → (output, before): total padding puts the extra pixel after.
        #expect(SamePadding(input: 224, kernel: 3, stride: 2) == SamePadding(input: 224, kernel: 3, stride: 2))
        let cases: [((Int, Int, Int), (Int, Int))] = [((224, 3, 2), (112, 0)), ((112, 3, 1), (112, 1)), ((56, 5, 2), (28, 1)),
                                                      ((33, 3, 2), (17, 1)), ((14, 5, 1), (14, 2)), ((7, 5, 2), (4, 2))]
        for ((i, k, s), (o, before)) in cases {
            let p = SamePadding(input: i, kernel: k, stride: s)
            #expect(p.output == o && p.before == before, "input \(i) kernel \(k) stride \(s): got \(p)")
        }
    }

    @Test("im2col convolution equals the naive convolution", arguments: [(3, 2, 9, 3, 2), (4, 1, 8, 3, 1), (2, 3, 7, 5, 2), (5, 2, 6, 1, 1)])
    func conv2dMatches(shape: (Int, Int, Int, Int, Int)) {
        let (c, n, size, k, stride) = shape
        let cout = 6
        let pad = SamePadding(input: size, kernel: k, stride: stride)
        let x = pseudoRandom(c * n * size * size, seed: 11), weight = pseudoRandom(cout * c * k * k, seed: 12), bias = pseudoRandom(cout, seed: 13)
        let o = pad.output
        var columns = [Float](repeating: .nan, count: c * k * k * n * o * o)
        var out = [Float](repeating: .nan, count: cout * n * o * o)
        conv2d(x, inChannels: c, images: n, height: size, width: size, weight: weight, bias: bias, outChannels: cout,
               kernel: k, stride: stride, padTop: pad.before, padLeft: pad.before, outHeight: o, outWidth: o, columns: &columns, out: &out)
        let expected = naiveConv2d(x, c: c, n: n, h: size, w: size, weight: weight, bias: bias, cout: cout, k: k, stride: stride,
                                   padTop: pad.before, padLeft: pad.before, oh: o, ow: o, groups: 1)
        expectClose(out, expected, tolerance: 1e-5, "conv2d \(shape)")
    }

    @Test("depthwise convolution equals the naive grouped convolution (and its ReLU6)",
          arguments: [(3, 2, 9, 3, 2), (4, 1, 8, 3, 1), (2, 3, 7, 5, 2), (3, 1, 5, 5, 1), (2, 2, 4, 5, 2), (2, 1, 37, 5, 1), (3, 2, 23, 3, 2), (1, 1, 17, 3, 1)])
    func depthwiseMatches(shape: (Int, Int, Int, Int, Int)) {
        let (c, n, size, k, stride) = shape
        let pad = SamePadding(input: size, kernel: k, stride: stride)
        let o = pad.output
        let x = pseudoRandom(c * n * size * size, seed: 21), weight = pseudoRandom(c * k * k, seed: 22), bias = pseudoRandom(c, seed: 23)
        var out = [Float](repeating: .nan, count: c * n * o * o), clamped = out
        var scratch = [Float](repeating: .nan, count: depthwisePaddedPlane(outHeight: o, outWidth: o, kernel: k, stride: stride))
        depthwiseConv(x, channels: c, images: n, height: size, width: size, weight: weight, bias: bias,
                      kernel: k, stride: stride, padTop: pad.before, padLeft: pad.before, outHeight: o, outWidth: o, scratch: &scratch, out: &out)
        let expected = naiveConv2d(x, c: c, n: n, h: size, w: size, weight: weight, bias: bias, cout: c, k: k, stride: stride,
                                   padTop: pad.before, padLeft: pad.before, oh: o, ow: o, groups: c)
        expectClose(out, expected, tolerance: 1e-5, "depthwise \(shape)")
        let scaled = x.map { $0 * 20 }  // values beyond 6 and below 0
        depthwiseConv(scaled, channels: c, images: n, height: size, width: size, weight: weight, bias: bias, kernel: k, stride: stride,
                      padTop: pad.before, padLeft: pad.before, outHeight: o, outWidth: o, relu6: true, scratch: &scratch, out: &clamped)
        let expectedClamped = naiveConv2d(scaled, c: c, n: n, h: size, w: size, weight: weight, bias: bias, cout: c, k: k, stride: stride,
                                          padTop: pad.before, padLeft: pad.before, oh: o, ow: o, groups: c).map { min(max($0, 0), 6) }
        expectClose(clamped, expectedClamped, tolerance: 1e-4, "depthwise + ReLU6 \(shape)")
    }

    @Test("pointwise convolution and global pooling equal their definitions")
    func pointwiseAndPooling() {
        let c = 5, n = 3, s = 7, cout = 4
        let x = pseudoRandom(c * n * s, seed: 31), weight = pseudoRandom(cout * c, seed: 32), bias = pseudoRandom(cout, seed: 33)
        var out = [Float](repeating: .nan, count: cout * n * s)
        pointwiseConv(x, inChannels: c, spatial: n * s, weight: weight, bias: bias, outChannels: cout, out: &out)
        let expected = naiveConv2d(x, c: c, n: n, h: 1, w: s, weight: weight, bias: bias, cout: cout, k: 1, stride: 1,
                                   padTop: 0, padLeft: 0, oh: 1, ow: s, groups: 1)
        expectClose(out, expected, tolerance: 1e-5, "pointwise")
        var pooled = [Float](repeating: .nan, count: n * cout)
        globalAveragePool(out, channels: cout, images: n, spatial: s, out: &pooled)
        var expectedPool = [Float](repeating: 0, count: n * cout)
        for o in 0..<cout { for i in 0..<n { expectedPool[i * cout + o] = (0..<s).map { out[(o * n + i) * s + $0] }.reduce(0, +) / Float(s) } }
        expectClose(pooled, expectedPool, tolerance: 1e-6, "pool")
    }

    @Test("1-D im2col + GEMM equals the naive conv1d in both layouts", arguments: [(3, 9, 2), (4, 1, 1), (2, 10, 2)])
    func conv1dMatches(shape: (Int, Int, Int)) {
        let (c, t, stride) = shape
        let cout = 5, k = 3
        let x = pseudoRandom(c * t, seed: 41), weight = pseudoRandom(cout * c * k, seed: 42)
        let outLength = (t + 2 - k) / stride + 1
        var expected = [Float](repeating: 0, count: outLength * cout)
        for o in 0..<outLength { for co in 0..<cout {
            var sum: Float = 0
            for ci in 0..<c { for j in 0..<k { let s = o * stride - 1 + j; if s >= 0 && s < t { sum += x[ci * t + s] * weight[(co * c + ci) * k + j] } } }
            expected[o * cout + co] = sum
        }}
        var columns = [Float](repeating: .nan, count: outLength * c * k)
        var out = [Float](repeating: .nan, count: outLength * cout)
        im2col1d(x, channels: c, length: t, channelStride: t, timeStride: 1, kernel: k, stride: stride, padding: 1, outLength: outLength, columns: &columns)
        linear(columns, rows: outLength, inFeatures: c * k, weight: weight, bias: nil, outFeatures: cout, out: &out)
        expectClose(out, expected, tolerance: 1e-5, "conv1d channel-major \(shape)")
        // The same signal stored time-major (T, C).
        var transposed = [Float](repeating: 0, count: c * t)
        for ci in 0..<c { for s in 0..<t { transposed[s * c + ci] = x[ci * t + s] } }
        im2col1d(transposed, channels: c, length: t, channelStride: 1, timeStride: c, kernel: k, stride: stride, padding: 1, outLength: outLength, columns: &columns)
        linear(columns, rows: outLength, inFeatures: c * k, weight: weight, bias: nil, outFeatures: cout, out: &out)
        expectClose(out, expected, tolerance: 1e-5, "conv1d time-major \(shape)")
    }

    @Test("late fusion: weighted L2 blocks, zero block for an absent tower, global L2")
    func fusion() throws {
        let fusion = LateFusion(order: [.text, .vision, .audio], widths: [.text: 2, .vision: 3, .audio: 1],
                                weights: [.text: 1, .vision: 2, .audio: 1])
        let fused = try fusion.fuse([.text: [3, 4], .vision: [0, 0, 5]])
        // text → [0.6, 0.8], vision → [0, 0, 2], audio → [0]; norm √5
        expectClose(fused, [0.6, 0.8, 0, 0, 2, 0].map { $0 / Float(5).squareRoot() }, tolerance: 1e-6, "fused")
        #expect(throws: ModelError.self) { try fusion.fuse([.text: [1, 2, 3]]) }
        #expect(fusion.dimension == 6)
    }
}

@Suite("Vector math")
struct VectorMathTests {
    @Test("vectorized exp and GELU match libm over a wide range, tails included", arguments: [1, 7, 8, 9, 1001])
    func againstLibm(count: Int) {
        let inputs = (0..<count).map { Float($0) / Float(max(count - 1, 1)) * 24 - 12 }
        var gelu = inputs
        geluErf(&gelu, count: count)
        let expected = inputs.map { 0.5 * $0 * (1 + erff($0 / Float(2).squareRoot())) }
        expectClose(gelu, expected, tolerance: 2e-6, "gelu")
        var row = inputs.map { $0 * 7 }  // softmax over [-84, 84]
        softmaxRows(&row, rows: 1, width: count)
        let peak = row.indices.map { inputs[$0] * 7 }.max()!
        let e = inputs.map { expf($0 * 7 - peak) }
        let total = e.reduce(0, +)
        expectClose(row, e.map { $0 / total }, tolerance: 1e-6, "softmax")
    }

    @Test("exp is accurate to a few ulp and erf saturates")
    func pointwise() {
        for value in stride(from: Float(-87), through: 88, by: 0.37) {
            let got = exp(Lanes(repeating: value))[0]
            #expect(abs(got - expf(value)) <= 4e-7 * expf(value), "exp(\(value)) = \(got), libm \(expf(value))")
        }
        for value in stride(from: Float(-6), through: 6, by: 0.01) {
            #expect(abs(erf(Lanes(repeating: value))[0] - erff(value)) <= 1e-6, "erf(\(value))")
        }
        #expect(exp(Lanes(repeating: -.infinity))[0] == 0)
        #expect(exp(Lanes(repeating: -100))[0] == 0)
    }
}

/// Bit-for-bit equality, reported as the number of differing values and the largest difference.
func expectIdentical(_ got: [Float], _ expected: [Float], _ label: String, sourceLocation: SourceLocation = #_sourceLocation) {
    let differing = zip(got, expected).filter { $0.0.bitPattern != $0.1.bitPattern }
    let maxDiff = differing.map { abs($0.0 - $0.1) }.max() ?? 0
    #expect(got.count == expected.count && differing.isEmpty,
            "\(label): \(differing.count) of \(expected.count) values differ, max abs diff \(maxDiff)", sourceLocation: sourceLocation)
}

/// Threads inside one engine call (Parallel.swift): every split kernel gives the same
/// values, bit for bit, as its single-thread run, on shapes that do split and odd ones.
@Suite("Threaded kernels")
struct ThreadedKernelTests {
    @Test("chunks cover the range once, at most `threads` of them, none below the grain")
    func chunks() {
        for (count, threads, grain) in [(0, 2, 1), (1, 2, 1), (7, 3, 1), (100, 2, 40), (100, 2, 60), (1001, 4, 16)] {
            let lock = NSLock()
            var seen: [Range<Int>] = []
            parallelChunks(count, threads: threads, grain: grain) { range in lock.withLock { seen.append(range) } }
            seen.sort { $0.lowerBound < $1.lowerBound }
            #expect(seen.flatMap { Array($0) } == Array(0..<count), "\(count) \(threads) \(grain): \(seen)")
            #expect(seen.count <= max(threads, 1) && (seen.count <= 1 || seen.allSatisfy { $0.count >= grain }))
        }
        var units = [Int](repeating: 0, count: 37)
        let lock = NSLock()
        parallelUnits(37, threads: 3) { unit, worker in
            #expect(worker < 3)
            lock.withLock { units[unit] += 1 }
        }
        #expect(units.allSatisfy { $0 == 1 })
    }

    @Test("row- and column-split GEMM equals one call, every transpose", arguments: [(129, 70, 300), (33, 515, 130), (700, 300, 11)])
    func gemmSplit(shape: (Int, Int, Int)) {
        let (m, n, k) = shape
        for (transA, transB) in [(Transpose.none, Transpose.none), (.transposed, .none), (.none, .transposed), (.transposed, .transposed)] {
            let a = pseudoRandom(m * k, seed: 3), b = pseudoRandom(k * n, seed: 4)
            var one = [Float](repeating: .nan, count: m * n)
            gemm(transA, transB, m: m, n: n, k: k, a: a, b: b, c: &one)
            for threads in [2, 3] {
                var split = [Float](repeating: .nan, count: m * n)
                gemm(transA, transB, m: m, n: n, k: k, a: a, b: b, c: &split, threads: threads)
                expectIdentical(one, split, "\(shape) \(transA) \(transB) threads \(threads)")
            }
        }
    }

    @Test("layer norm, GELU, ReLU6, add and linear split by rows or elements", arguments: [2, 3])
    func elementwise(threads: Int) {
        let rows = 97, width = 385, count = rows * width
        let x = pseudoRandom(count, seed: 51), y = pseudoRandom(count, seed: 52)
        let gamma = pseudoRandom(width, seed: 53), beta = pseudoRandom(width, seed: 54)
        func both(_ body: (UnsafeMutablePointer<Float>, Int) -> Void) -> ([Float], [Float]) {
            var one = x.map { $0 * 8 }, split = x.map { $0 * 8 }
            body(&one, 1)
            body(&split, threads)
            return (one, split)
        }
        var (one, split) = both { layerNorm($0, rows: rows, width: width, gamma: gamma, beta: beta, eps: 1e-5, out: $0, threads: $1) }
        expectIdentical(split, one, "layer norm")
        (one, split) = both { geluErf($0, count: count - 3, threads: $1) }
        expectIdentical(split, one, "gelu")
        (one, split) = both { relu6($0, count: count, threads: $1) }
        expectIdentical(split, one, "relu6")
        (one, split) = both { addInPlace($0, y, count: count, threads: $1) }
        expectIdentical(split, one, "add")
        let weight = pseudoRandom(129 * width, seed: 55), bias = pseudoRandom(129, seed: 56)
        var linearOne = [Float](repeating: .nan, count: rows * 129), linearSplit = linearOne
        linear(x, rows: rows, inFeatures: width, weight: weight, bias: bias, outFeatures: 129, out: &linearOne)
        linear(x, rows: rows, inFeatures: width, weight: weight, bias: bias, outFeatures: 129, out: &linearSplit, threads: threads)
        expectIdentical(linearSplit, linearOne, "linear")
    }

    @Test("attention shares (sequence, head) units among workers", arguments: [2, 3])
    func attentionUnits(threads: Int) {
        let lengths = [7, 1, 40, 4, 0, 19], heads = 3, headDim = 5, width = heads * headDim, stride = 3 * width + 2
        let tokens = lengths.reduce(0, +), maxLength = lengths.max()!
        let qkv = pseudoRandom(tokens * stride, seed: 61)
        var starts: [Int] = [], offset = 0
        for l in lengths { starts.append(offset); offset += l }
        var scores = [Float](repeating: 0, count: threads * maxLength * maxLength)
        var one = [Float](repeating: .nan, count: tokens * width), split = one
        attention(qkv: qkv, stride: stride, heads: heads, headDim: headDim, starts: starts, lengths: lengths, scale: 0.4, scores: &scores, out: &one)
        attention(qkv: qkv, stride: stride, heads: heads, headDim: headDim, starts: starts, lengths: lengths, scale: 0.4, scores: &scores, out: &split,
                  threads: threads)
        expectIdentical(split, one, "attention threads \(threads)")
    }

    @Test("convolutions split by channels, im2col rows and time", arguments: [(5, 2, 19, 3, 2), (7, 3, 12, 5, 1)])
    func convolutions(shape: (Int, Int, Int, Int, Int)) {
        let (c, n, size, k, stride) = shape
        let pad = SamePadding(input: size, kernel: k, stride: stride)
        let o = pad.output, cout = 9
        let x = pseudoRandom(c * n * size * size, seed: 71), weight = pseudoRandom(cout * c * k * k, seed: 72), bias = pseudoRandom(cout, seed: 73)
        for threads in [2, 3] {
            var columns = [Float](repeating: .nan, count: c * k * k * n * o * o)
            var one = [Float](repeating: .nan, count: cout * n * o * o), split = one
            conv2d(x, inChannels: c, images: n, height: size, width: size, weight: weight, bias: bias, outChannels: cout, kernel: k, stride: stride,
                   padTop: pad.before, padLeft: pad.before, outHeight: o, outWidth: o, columns: &columns, out: &one)
            conv2d(x, inChannels: c, images: n, height: size, width: size, weight: weight, bias: bias, outChannels: cout, kernel: k, stride: stride,
                   padTop: pad.before, padLeft: pad.before, outHeight: o, outWidth: o, columns: &columns, out: &split, threads: threads)
            expectIdentical(split, one, "conv2d \(shape) threads \(threads)")
            var dwOne = [Float](repeating: .nan, count: c * n * o * o), dwSplit = dwOne
            var planes = [Float](repeating: .nan, count: threads * depthwisePaddedPlane(outHeight: o, outWidth: o, kernel: k, stride: stride))
            depthwiseConv(x, channels: c, images: n, height: size, width: size, weight: weight, bias: bias, kernel: k, stride: stride,
                          padTop: pad.before, padLeft: pad.before, outHeight: o, outWidth: o, scratch: &planes, out: &dwOne)
            depthwiseConv(x, channels: c, images: n, height: size, width: size, weight: weight, bias: bias, kernel: k, stride: stride,
                          padTop: pad.before, padLeft: pad.before, outHeight: o, outWidth: o, scratch: &planes, out: &dwSplit, threads: threads)
            expectIdentical(dwSplit, dwOne, "depthwise \(shape) threads \(threads)")
            let length = n * size * size / c, outLength = (length - 1) / stride + 1
            var colOne = [Float](repeating: .nan, count: outLength * c * 3), colSplit = colOne
            im2col1d(x, channels: c, length: length, channelStride: length, timeStride: 1, kernel: 3, stride: stride, padding: 1,
                     outLength: outLength, columns: &colOne)
            im2col1d(x, channels: c, length: length, channelStride: length, timeStride: 1, kernel: 3, stride: stride, padding: 1,
                     outLength: outLength, columns: &colSplit, threads: threads)
            expectIdentical(colSplit, colOne, "im2col1d \(shape) threads \(threads)")
        }
    }
}

/// Rounds to bf16 (nearest even), the reference for the bf16 kernel's inputs.
func bf16Rounded(_ x: Float) -> Float {
    let bits = x.bitPattern
    return Float(bitPattern: (bits &+ 0x7fff &+ ((bits >> 16) & 1)) & 0xffff_0000)
}

@Suite("bf16 kernels", .enabled(if: ComputePrecision.bf16Available, "needs AVX512-BF16"))
struct BF16KernelTests {
    @Test("bf16 linear equals the naive product of bf16-rounded inputs; row blocks equal one call",
          arguments: [(1, 1, 1), (7, 5, 17), (33, 63, 40), (97, 385, 129), (130, 384, 1152)])
    func linearMatches(shape: (Int, Int, Int)) {
        let (rows, inFeatures, outFeatures) = shape
        let x = pseudoRandom(rows * inFeatures, seed: 81), weight = pseudoRandom(outFeatures * inFeatures, seed: 82), bias = pseudoRandom(outFeatures, seed: 83)
        let packed = BF16Weights(weight, outFeatures: outFeatures, inFeatures: inFeatures)
        var scratch = [Float](repeating: .nan, count: bf16ScratchFloats(rows: rows, inFeatures: inFeatures))
        var one = [Float](repeating: .nan, count: rows * outFeatures), split = one
        linearBF16(x, rows: rows, inFeatures: inFeatures, weight: packed, bias: bias, out: &one, scratch: &scratch)
        linearBF16(x, rows: rows, inFeatures: inFeatures, weight: packed, bias: bias, out: &split, scratch: &scratch, threads: 3)
        var expected = [Float](repeating: 0, count: rows * outFeatures)
        for r in 0..<rows { for o in 0..<outFeatures {
            expected[r * outFeatures + o] = Float((0..<inFeatures).reduce(Double(bias[o])) {
                $0 + Double(bf16Rounded(x[r * inFeatures + $1])) * Double(bf16Rounded(weight[o * inFeatures + $1]))
            })
        }}
        expectClose(one, expected, tolerance: 1e-4 * Float(inFeatures).squareRoot(), minCosine: 0.999999, "bf16 linear \(shape)")
        expectIdentical(split, one, "bf16 linear \(shape), 3 threads")
        // Against fp32: bf16 keeps 8 bits of mantissa, so about 3 significant digits.
        var fp32 = [Float](repeating: .nan, count: rows * outFeatures)
        linear(x, rows: rows, inFeatures: inFeatures, weight: weight, bias: bias, outFeatures: outFeatures, out: &fp32)
        expectClose(one, fp32, tolerance: 0.02 * Float(inFeatures).squareRoot(), minCosine: 0.999, "bf16 vs fp32 \(shape)")
    }
}

extension BF16KernelTests {
    // Head width 64 (Whisper's) fills whole 32-row panels of the packed v, and lengths over
    // 64 run several query blocks.
    @Test("bf16 attention stays within cosine 0.999 of fp32 attention; units split over workers alike",
          arguments: [([1], 20), ([7, 40, 3], 20), ([130], 20), ([70], 64), ([200, 33], 64)])
    func attentionBF16(lengths: [Int], headDim: Int) {
        let heads = 3, width = heads * headDim, stride = 3 * width + 2
        let tokens = lengths.reduce(0, +), maxLength = lengths.max()!
        let qkv = pseudoRandom(tokens * stride, seed: 91)
        var starts: [Int] = [], offset = 0
        for l in lengths { starts.append(offset); offset += l }
        var scores = [Float](repeating: 0, count: 3 * maxLength * maxLength)
        var scratch = [Float](repeating: .nan, count: 3 * attentionBF16ScratchFloats(maxLength: maxLength, headDim: headDim))
        var fp32 = [Float](repeating: .nan, count: tokens * width), one = fp32, split = fp32
        attention(qkv: qkv, stride: stride, heads: heads, headDim: headDim, starts: starts, lengths: lengths, scale: 0.3, scores: &scores, out: &fp32)
        attention(qkv: qkv, stride: stride, heads: heads, headDim: headDim, starts: starts, lengths: lengths, scale: 0.3, scores: &scores, out: &one,
                  bf16: &scratch)
        attention(qkv: qkv, stride: stride, heads: heads, headDim: headDim, starts: starts, lengths: lengths, scale: 0.3, scores: &scores, out: &split,
                  bf16: &scratch, threads: 3)
        expectClose(one, fp32, tolerance: 0.02, minCosine: 0.999, "bf16 attention \(lengths)")
        expectIdentical(split, one, "bf16 attention \(lengths), 3 threads")
    }
}

extension BF16KernelTests {
    @Test("the packed weight layout puts w[row, col] where the kernel reads it, and zeros in the padding",
          arguments: [(1, 1), (31, 3), (33, 64), (70, 129), (64, 500)])
    func packedLayout(shape: (Int, Int)) {
        let (outFeatures, inFeatures) = shape
        let weight = pseudoRandom(outFeatures * inFeatures, seed: 71)
        let packed = BF16Weights(weight, outFeatures: outFeatures, inFeatures: inFeatures)
        let panels = (outFeatures + 31) / 32, pairs = (inFeatures + 1) / 2
        #expect(packed.packedCount == panels * 32 * pairs * 2)
        var seen = [Bool](repeating: false, count: packed.packedCount)
        for row in 0..<outFeatures { for column in 0..<inFeatures {
            let index = packed.packedIndex(row: row, column: column)
            seen[index] = true
            #expect(packed.packed[index] == UInt16(bf16Rounded(weight[row * inFeatures + column]).bitPattern >> 16), "w[\(row), \(column)]")
        }}
        let padding = seen.indices.filter { !seen[$0] }
        #expect(padding.count == packed.packedCount - outFeatures * inFeatures)
        #expect(padding.allSatisfy { packed.packed[$0] == 0 }, "padding of \(shape) is zero")
        // The same matrix read through strided views (the packing's vector paths for rows or
        // columns adjacent in memory, and the scalar one) packs to the same bits.
        var transposed = [Float](repeating: 0, count: weight.count), spread = [Float](repeating: 0, count: 2 * weight.count)
        for row in 0..<outFeatures { for column in 0..<inFeatures {
            transposed[column * outFeatures + row] = weight[row * inFeatures + column]
            spread[2 * (row * inFeatures + column)] = weight[row * inFeatures + column]
        }}
        let views = [BF16Weights(transposed, outFeatures: outFeatures, inFeatures: inFeatures, rowStride: 1, columnStride: outFeatures),
                     BF16Weights(spread, outFeatures: outFeatures, inFeatures: inFeatures, rowStride: 2 * inFeatures, columnStride: 2)]
        for view in views {
            #expect((0..<packed.packedCount).allSatisfy { view.packed[$0] == packed.packed[$0] }, "strided view of \(shape)")
        }
    }

    @Test("bf16 linear with bias and fused GELU matches the naive product on shapes off the 8 × 32 blocking and odd k",
          arguments: [(1, 1, 1), (9, 3, 33), (17, 63, 31), (8, 2, 32), (65, 129, 70), (100, 1536, 48), (23, 240, 17)])
    func linearGELUEdges(shape: (Int, Int, Int)) {
        let (rows, inFeatures, outFeatures) = shape
        let x = pseudoRandom(rows * inFeatures, seed: 61), weight = pseudoRandom(outFeatures * inFeatures, seed: 62)
        let bias = pseudoRandom(outFeatures, seed: 63)
        let packed = BF16Weights(weight, outFeatures: outFeatures, inFeatures: inFeatures)
        var scratch = [Float](repeating: .nan, count: bf16ScratchFloats(rows: rows, inFeatures: inFeatures))
        // A wider output stride: the columns past outFeatures must stay untouched.
        let ld = outFeatures + 5
        var fused = [Float](repeating: .nan, count: rows * ld), split = fused
        linearBF16(x, rows: rows, inFeatures: inFeatures, weight: packed, bias: bias, out: &fused, ldOut: ld, scratch: &scratch, activation: .gelu)
        linearBF16(x, rows: rows, inFeatures: inFeatures, weight: packed, bias: bias, out: &split, ldOut: ld, scratch: &scratch, threads: 3,
                   activation: .gelu)
        expectIdentical(split, fused, "fused GELU \(shape), 3 threads")
        var got: [Float] = [], expected: [Float] = []
        for r in 0..<rows {
            for o in 0..<outFeatures {
                let sum = (0..<inFeatures).reduce(Double(bias[o])) {
                    $0 + Double(bf16Rounded(x[r * inFeatures + $1])) * Double(bf16Rounded(weight[o * inFeatures + $1]))
                }
                expected.append(Float(0.5 * sum * (1 + Foundation.erf(sum / 2.0.squareRoot()))))
                got.append(fused[r * ld + o])
            }
            let untouched = fused[(r * ld + outFeatures)..<(r * ld + ld)].allSatisfy { $0.isNaN }
            #expect(untouched, "row \(r) past the output width")
        }
        expectClose(got, expected, tolerance: 1e-4 * Float(inFeatures).squareRoot() + 1e-5, minCosine: 0.999999, "bf16 linear + GELU \(shape)")
        // The fp32 path of the same call: linear, then the separate geluErf pass.
        var fp32 = [Float](repeating: .nan, count: rows * ld)
        linear(x, rows: rows, inFeatures: inFeatures, weight: weight, bias: bias, outFeatures: outFeatures, out: &fp32, ldOut: ld,
               bf16: nil, scratch: nil, activation: .gelu)
        let fp32Values = (0..<rows).flatMap { r in fp32[(r * ld)..<(r * ld + outFeatures)] }
        expectClose(got, fp32Values, tolerance: 0.02 * Float(inFeatures).squareRoot(), minCosine: 0.999, "bf16 vs fp32 GELU \(shape)")
    }

    @Test("bf16 softmax rows: exp(scale·x − max) rounded to bf16, fp32 sums, zero padding to even width",
          arguments: [(1, 1), (3, 17), (2, 32), (5, 33), (4, 500)])
    func softmaxRows(shape: (Int, Int)) {
        let (rows, width) = shape
        var x = pseudoRandom(rows * width, seed: 51).map { $0 * 20 }
        if width > 2 { x[1] = -.infinity }  // a masked entry gives 0
        let scale: Float = 0.37
        let (bits, sums) = softmaxBF16Rows(x, rows: rows, width: width, scale: scale)
        let stride = (width + 1) / 2 * 2
        #expect(bits.count == rows * stride)
        for r in 0..<rows {
            let row = x[(r * width)..<((r + 1) * width)]
            let peak = Double(row.max()!)
            let exact = row.map { Foundation.exp(Double(scale) * (Double($0) - peak)) }
            let got = (0..<width).map { Float(bitPattern: UInt32(bits[r * stride + $0]) << 16) }
            // bf16 keeps 8 significant bits: relative error at most 2⁻⁸ plus the exp's.
            for (g, e) in zip(got, exact) { #expect(abs(Double(g) - e) <= e * 0.0045 + 1e-30, "row \(r): \(g) vs \(e)") }
            #expect(abs(Double(sums[r]) - exact.reduce(0, +)) <= 1e-5 * exact.reduce(0, +), "row \(r) sum")
            if stride > width { #expect(bits[r * stride + width] == 0, "row \(r) padding") }
        }
        if width > 2 { #expect(bits[1] == 0, "exp(−∞) is 0") }
    }
}

extension BF16KernelTests {
    @Test("the fused GELU matches libm over [−12, 12], where erf saturates included")
    func fusedGELURange() {
        // One input feature of weight 1 and no bias: the output is GELU of x itself (multiples of 1/16 are exact in bf16).
        let x = (0...384).map { Float($0 - 192) / 16 }
        let packed = BF16Weights([1], outFeatures: 1, inFeatures: 1)
        var scratch = [Float](repeating: .nan, count: bf16ScratchFloats(rows: x.count, inFeatures: 1))
        var out = [Float](repeating: .nan, count: x.count)
        linearBF16(x, rows: x.count, inFeatures: 1, weight: packed, bias: nil, out: &out, scratch: &scratch, activation: .gelu)
        expectClose(out, x.map { 0.5 * $0 * (1 + erff($0 / Float(2).squareRoot())) }, tolerance: 2e-6, "fused gelu")
    }
}

extension BF16KernelTests {
    @Test("bf16 1×1 convolution (channel bias, ReLU6 in the store) matches the naive product; panel splits and threads alike",
          arguments: [(1, 1, 1, false), (7, 5, 33, true), (40, 17, 100, false), (130, 64, 70, true), (16, 32, 1000, true)])
    func pointwiseConvolution(shape: (Int, Int, Int, Bool)) {
        let (outChannels, inChannels, spatial, relu6) = shape
        let x = pseudoRandom(inChannels * spatial, seed: 41).map { $0 * 4 }, weight = pseudoRandom(outChannels * inChannels, seed: 42)
        let bias = pseudoRandom(outChannels, seed: 43)
        let rows = BF16Rows(weight, rows: outChannels, columns: inChannels)
        var scratch = [Float](repeating: .nan, count: pointwiseBF16ScratchFloats(inChannels: inChannels, spatial: spatial))
        var one = [Float](repeating: .nan, count: outChannels * spatial), split = one
        pointwiseConvBF16(x, inChannels: inChannels, spatial: spatial, weight: rows, bias: bias, relu6: relu6, out: &one, scratch: &scratch)
        pointwiseConvBF16(x, inChannels: inChannels, spatial: spatial, weight: rows, bias: bias, relu6: relu6, out: &split, scratch: &scratch,
                          threads: 3)
        expectIdentical(split, one, "bf16 pointwise \(shape), 3 threads")
        var expected = [Float](repeating: 0, count: outChannels * spatial)
        for o in 0..<outChannels { for s in 0..<spatial {
            let sum = (0..<inChannels).reduce(Double(bias[o])) {
                $0 + Double(bf16Rounded(weight[o * inChannels + $1])) * Double(bf16Rounded(x[$1 * spatial + s]))
            }
            expected[o * spatial + s] = relu6 ? Float(min(max(sum, 0), 6)) : Float(sum)
        }}
        expectClose(one, expected, tolerance: 1e-4 * Float(inChannels).squareRoot(), minCosine: 0.999999, "bf16 pointwise \(shape)")
        var fp32 = [Float](repeating: .nan, count: outChannels * spatial)
        pointwiseConv(x, inChannels: inChannels, spatial: spatial, weight: weight, bias: bias, outChannels: outChannels, relu6: relu6, out: &fp32)
        expectClose(one, fp32, tolerance: 0.05 * Float(inChannels).squareRoot(), minCosine: 0.999, "bf16 vs fp32 pointwise \(shape)")
    }
}
