import Dispatch
import Foundation

// Threads inside one engine call. Kernels split their work into at most `threads`
// contiguous chunks (or pull independent units from a shared counter) and run them with
// `DispatchQueue.concurrentPerform`: Dispatch worker threads plus the caller, never the
// Swift concurrency pool. Each output value is computed by the same code on the same
// inputs whichever chunk it lands in, so results do not depend on the thread count
// (GEMM row or column blocks included: OpenBLAS accumulates each element over k in the
// same order). OpenBLAS must then run one thread per call (`BLASThreads.count = 1`), or
// engine threads × BLAS threads oversubscribe the cores.

/// Calls `body` once per chunk of `0..<count`: at most `threads` contiguous ranges of at
/// least `grain` elements (one chunk, on the calling thread, when the work is small).
/// Returns how many chunks (so threads) it ran, for `GEMMProfile`'s thread time.
@discardableResult
package func parallelChunks(_ count: Int, threads: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) -> Int {
    parallelChunks(count, threads: threads, grain: grain) { range, _ in body(range) }
}

/// `parallelChunks` that also passes the chunk's index in `0..<threads`, for per-worker scratch.
@discardableResult
package func parallelChunks(_ count: Int, threads: Int, grain: Int = 1, _ body: (_ range: Range<Int>, _ worker: Int) -> Void) -> Int {
    let chunks = min(max(threads, 1), count / max(grain, 1))
    guard chunks > 1 else {
        if count > 0 { body(0..<count, 0) }
        return 1
    }
    concurrentPerform(chunks) { chunk in body(chunk * count / chunks ..< (chunk + 1) * count / chunks, chunk) }
    return chunks
}

/// Calls `body(unit, worker)` for every unit in `0..<count`, on at most `threads` workers
/// that take the next unit as they finish one (units of uneven cost balance themselves).
/// `worker` in `0..<threads` identifies the caller's private scratch.
package func parallelUnits(_ count: Int, threads: Int, _ body: (_ unit: Int, _ worker: Int) -> Void) {
    let workers = min(max(threads, 1), count)
    guard workers > 1 else {
        for unit in 0..<count { body(unit, 0) }
        return
    }
    let next = UnitCounter()
    concurrentPerform(workers) { worker in
        while true {
            let unit = next.take()
            guard unit < count else { return }
            body(unit, worker)
        }
    }
}

/// `DispatchQueue.concurrentPerform` over a non-escaping, non-`Sendable` body. Kernel
/// bodies capture raw pointers into the caller's buffers; they are safe to share because
/// every iteration writes a disjoint part and the call returns only after all iterations.
private func concurrentPerform(_ iterations: Int, _ body: (Int) -> Void) {
    withoutActuallyEscaping(body) { body in
        let shared = UncheckedSendable(body)
        DispatchQueue.concurrentPerform(iterations: iterations) { shared.value($0) }
    }
}

private struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// The next unit to hand out; a lock is cheap at these counts (tens to hundreds per call).
private final class UnitCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0

    func take() -> Int {
        lock.withLock {
            defer { value += 1 }
            return value
        }
    }
}
