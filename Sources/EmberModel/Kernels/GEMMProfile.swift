import Foundation

/// Opt-in accounting of time and floating-point work spent inside `gemm`, for
/// `ember bench engine` (GEMM GFLOP/s versus the OpenBLAS peak). Off by default; when
/// off, `gemm` pays one uncontended lock per call (tens of nanoseconds).
package final class GEMMProfile: @unchecked Sendable {
    public static let shared = GEMMProfile()

    private let lock = NSLock()
    private var _enabled = false
    private var nanoseconds: UInt64 = 0
    private var flops: Double = 0
    private var calls = 0

    /// Turns accounting on and clears the totals.
    public func start() {
        lock.withLock { _enabled = true; nanoseconds = 0; flops = 0; calls = 0 }
    }

    /// Turns accounting off and returns (seconds in gemm, FLOPs, calls) since `start()`.
    public func stop() -> (seconds: Double, flops: Double, calls: Int) {
        lock.withLock {
            _enabled = false
            return (Double(nanoseconds) / 1e9, flops, calls)
        }
    }

    var enabled: Bool { lock.withLock { _enabled } }

    func record(nanoseconds elapsed: UInt64, m: Int, n: Int, k: Int) {
        lock.withLock {
            nanoseconds += elapsed
            flops += 2 * Double(m) * Double(n) * Double(k)
            calls += 1
        }
    }
}
