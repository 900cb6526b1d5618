import Foundation
import Testing
@testable import EmberModel

/// The vision tower's own kernel against its naive twin.
@Suite("Qwen2-VL vision kernels")
struct Qwen2VisionKernelTests {
    @Test("quick_gelu (vectorized exp) matches x · sigmoid(1.702 x) with libm on an odd count", arguments: [1, 2])
    func quickGelu(threads: Int) {
        // Large magnitudes too: the vector exp clamps its input, the result must not become NaN.
        let input = pseudoRandom(20_003, seed: 17).map { $0 * 12 } + [-200, -90, 0, 90, 200]
        var got = input
        got.withUnsafeMutableBufferPointer { quickGELU($0.baseAddress!, count: $0.count, threads: threads) }
        let expected = input.map { x in Float(Double(x) / (1 + Foundation.exp(-1.702 * Double(x)))) }
        let worst = zip(got, expected).map { abs($0 - $1) / max(1, abs($1)) }.max()!
        #expect(worst <= 1e-6, "max relative error \(worst)")
        #expect(got.allSatisfy { $0.isFinite })
    }
}
