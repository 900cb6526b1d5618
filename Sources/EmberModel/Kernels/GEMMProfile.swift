import Foundation

/// Opt-in accounting of the floating-point work done inside the GEMM kernels (fp32 `gemm`,
/// the bf16 linear layers, feed-forward blocks and 1×1 convolutions) and the thread time
/// it took, for `ember bench engine`'s GEMM line. Off by default; when off, a kernel pays
/// one uncontended lock per call (tens of nanoseconds).
///
/// Time is thread time: a call's wall time × the threads it split its work over. A call
/// split over 2 threads and two 1-thread calls running side by side (the audio tower's
/// per-clip scheduling) then count alike, and FLOPs / thread-seconds is a per-thread rate
/// comparable with a one-thread peak.
package final class GEMMProfile: @unchecked Sendable {
    public static let shared = GEMMProfile()

    private let lock = NSLock()
    private var _enabled = false
    private var threadNanoseconds: UInt64 = 0
    private var flops: Double = 0
    private var calls = 0

    /// Turns accounting on and clears the totals.
    public func start() {
        lock.withLock { _enabled = true; threadNanoseconds = 0; flops = 0; calls = 0 }
    }

    /// Turns accounting off and returns (thread-seconds in GEMM kernels, FLOPs, calls) since `start()`.
    public func stop() -> (threadSeconds: Double, flops: Double, calls: Int) {
        lock.withLock {
            _enabled = false
            return (Double(threadNanoseconds) / 1e9, flops, calls)
        }
    }

    var enabled: Bool { lock.withLock { _enabled } }

    /// One product of (m × k)·(k × n) that took `elapsed` wall nanoseconds on `threads` threads.
    func record(nanoseconds elapsed: UInt64, threads: Int, m: Int, n: Int, k: Int) {
        lock.withLock {
            threadNanoseconds += elapsed * UInt64(max(threads, 1))
            flops += 2 * Double(m) * Double(n) * Double(k)
            calls += 1
        }
    }
}
