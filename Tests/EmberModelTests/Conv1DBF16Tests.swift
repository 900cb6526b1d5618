import Foundation
import Testing
@testable import EmberModel

/// Conv1DBF16.swift: time-major bf16 rows, and the 1-D convolution that reads its windows
/// from them in place, against the naive sum over the same bf16 roundings.
@Suite("bf16 1-D convolution", .enabled(if: ComputePrecision.bf16Available, "needs AVX512-BF16"))
struct Conv1DBF16Tests {
    private func bits(_ value: UInt16) -> Float { Float(bitPattern: UInt32(value) << 16) }

    @Test("time rows hold the transposed bf16 rounding, padding rows zero; threads alike", arguments: [(8, 1), (80, 37), (6, 130), (2, 17)])
    func timeRows(shape: (Int, Int)) {
        let (channels, frames) = shape
        let x = pseudoRandom(channels * frames, seed: 91)
        for threads in [1, 3] {
            var storage = [UInt16](repeating: 0xffff, count: PaddedTimeRows.elements(channels: channels, frames: frames, padding: 2))
            storage.withUnsafeMutableBufferPointer { buffer in
                timeRowsBF16(channelMajor: x, into: PaddedTimeRows(buffer.baseAddress!, channels: channels, frames: frames, padding: 2), threads: threads)
            }
            var wrong = 0
            for t in -2..<(frames + 2) {
                for c in 0..<channels {
                    let expected = (0..<frames).contains(t) ? bf16Rounded(x[c * frames + t]) : 0
                    if bits(storage[(t + 2) * channels + c]).bitPattern != expected.bitPattern { wrong += 1 }
                }
            }
            #expect(wrong == 0, "\(shape), \(threads) threads: \(wrong) of \((frames + 4) * channels) values wrong")
        }
    }

    @Test("convolution (padding 1, kernel 3) equals the naive sum over bf16 windows and weights, plus bias, then GELU; threads alike; bf16 rows out are the fp32 output rounded",
          arguments: [(8, 16, 1, 1), (8, 32, 37, 2), (80, 48, 100, 1), (64, 40, 101, 2), (64, 40, 100, 2)])
    func convolution(shape: (Int, Int, Int, Int)) {
        let (inChannels, outChannels, frames, stride) = shape
        let x = pseudoRandom(inChannels * frames, seed: 92), weight = pseudoRandom(outChannels * inChannels * 3, seed: 93)
        let bias = pseudoRandom(outChannels, seed: 94)
        let packed = BF16Weights(conv1d: weight, outChannels: outChannels, inChannels: inChannels, kernel: 3)
        var storage = [UInt16](repeating: 0xffff, count: PaddedTimeRows.elements(channels: inChannels, frames: frames, padding: 1))
        let length = (frames + 2 - 3) / stride + 1
        for activation in [LinearActivation.none, .gelu] {
            var one = [Float](repeating: .nan, count: length * outChannels), split = one
            var rounded = [UInt16](repeating: 0xffff, count: PaddedTimeRows.elements(channels: outChannels, frames: length, padding: 1))
            storage.withUnsafeMutableBufferPointer { buffer in
                let rows = PaddedTimeRows(buffer.baseAddress!, channels: inChannels, frames: frames, padding: 1)
                timeRowsBF16(channelMajor: x, into: rows)
                #expect(conv1dOutputLength(rows, kernel: 3, stride: stride) == length)
                conv1dBF16(rows, stride: stride, weight: packed, bias: bias, activation: activation, out: &one)
                conv1dBF16(rows, stride: stride, weight: packed, bias: bias, activation: activation, out: &split, threads: 3)
                rounded.withUnsafeMutableBufferPointer { out in
                    conv1dBF16(rows, stride: stride, weight: packed, bias: bias, activation: activation,
                               into: PaddedTimeRows(out.baseAddress!, channels: outChannels, frames: length, padding: 1), threads: 2)
                }
            }
            var expected = [Float](repeating: 0, count: length * outChannels)
            for t in 0..<length {
                for o in 0..<outChannels {
                    var sum = Double(bias[o])
                    for c in 0..<inChannels {
                        for j in 0..<3 {
                            let source = t * stride - 1 + j
                            guard (0..<frames).contains(source) else { continue }
                            sum += Double(bf16Rounded(weight[(o * inChannels + c) * 3 + j])) * Double(bf16Rounded(x[c * frames + source]))
                        }
                    }
                    if activation == .gelu { sum = 0.5 * sum * (1 + erf(sum / 2.0.squareRoot())) }
                    expected[t * outChannels + o] = Float(sum)
                }
            }
            expectClose(one, expected, tolerance: 1e-4, minCosine: 0.999999, "\(shape) \(activation)")
            expectIdentical(split, one, "\(shape) \(activation), 3 threads")
            let roundedOut = (0..<(length * outChannels)).map { bits(rounded[outChannels + $0]) }
            expectIdentical(roundedOut, one.map(bf16Rounded), "\(shape) \(activation), bf16 rows out")
            let padding = Array(rounded[..<outChannels]) + Array(rounded[((length + 1) * outChannels)...])
            #expect(padding.allSatisfy { $0 == 0 }, "\(shape) \(activation): output padding rows not zero")
        }
    }
}
