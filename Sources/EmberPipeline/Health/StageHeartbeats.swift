import Foundation

/// Liveness of the pipeline's stage threads, for `/healthz`.
///
/// Each stage thread owns one slot. The consumer thread `beat`s on every loop turn (it
/// never blocks longer than one poll); decode and embed threads mark themselves `busy`
/// when they take an item or a batch and `idle` when they go back to their queue, so an
/// idle thread waiting on an empty queue is healthy however long it waits. A slot is
/// *stalled* when it has been busy (or, for the consumer, silent) longer than the
/// staleness bound: a hung FFmpeg read, a deadlock, a BLAS call that never returns.
public final class StageHeartbeats: @unchecked Sendable {
    /// One thread's state as `/healthz` reports it.
    public struct Slot: Sendable, Equatable {
        public var name: String
        /// Seconds since the slot last beat (consumer) or since it took its current work;
        /// nil while idle.
        public var busySeconds: Double?
        /// The thread has returned (the pipeline stopped).
        public var finished: Bool
    }

    private struct Entry {
        var name: String
        var since: UInt64?
        var finished = false
    }

    private let lock = NSLock()
    private var entries: [Entry] = []

    public init() {}

    /// Adds a slot for a thread about to start; its clock starts now.
    public func register(_ name: String) -> Int {
        lock.withLock {
            entries.append(Entry(name: name, since: DispatchTime.now().uptimeNanoseconds))
            return entries.count - 1
        }
    }

    /// The thread is alive and about to do (or is doing) bounded work.
    public func beat(_ slot: Int) { busy(slot) }

    public func busy(_ slot: Int) {
        let now = DispatchTime.now().uptimeNanoseconds
        lock.withLock { entries[slot].since = now }
    }

    public func idle(_ slot: Int) {
        lock.withLock { entries[slot].since = nil }
    }

    public func finish(_ slot: Int) {
        lock.withLock {
            entries[slot].since = nil
            entries[slot].finished = true
        }
    }

    /// Every slot, in registration order.
    public func snapshot() -> [Slot] {
        let now = DispatchTime.now().uptimeNanoseconds
        return lock.withLock {
            entries.map { entry in
                Slot(name: entry.name, busySeconds: entry.since.map { Double(now &- $0) / 1e9 }, finished: entry.finished)
            }
        }
    }

    /// Slots busy or silent for longer than `bound` seconds.
    public func stalled(after bound: Double) -> [Slot] {
        snapshot().filter { ($0.busySeconds ?? 0) > bound }
    }
}
