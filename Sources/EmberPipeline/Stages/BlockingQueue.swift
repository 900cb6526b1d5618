import DequeModule
import Foundation

/// A bounded FIFO between pipeline stages, shared by Dispatch worker threads (never the
/// Swift concurrency pool: `take` and `put` block). The consumer thread never blocks
/// on it: admission is bounded by the in-flight window (`InFlightTracker`), which
/// pauses the consumer instead of stalling the thread that keeps the session alive.
final class BlockingQueue<Element>: @unchecked Sendable {
    let capacity: Int
    private let condition = NSCondition()
    private var items = Deque<Element>()
    private var isClosed = false

    init(capacity: Int) {
        precondition(capacity > 0, "queue capacity must be positive")
        self.capacity = capacity
    }

    var count: Int {
        condition.lock()
        defer { condition.unlock() }
        return items.count
    }

    /// Waits for room, then appends; returns false when the queue was closed. For
    /// stage-to-stage hand-off: a full embedding queue slows the decoders, which fills
    /// the decode queue, which pauses the consumer.
    func put(_ element: Element) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while !isClosed && items.count >= capacity { condition.wait() }
        guard !isClosed else { return false }
        items.append(element)
        condition.broadcast()
        return true
    }

    /// Appends even beyond capacity; returns false when the queue was closed. For work
    /// that already holds an in-flight slot (a retry), so refusing it for room would lose
    /// the item.
    @discardableResult
    func force(_ element: Element) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !isClosed else { return false }
        items.append(element)
        condition.broadcast()
        return true
    }

    /// Waits for at least one element, then takes up to `maxCount`, waiting at most
    /// `maxWait` seconds after the first for more to arrive (micro-batching). Returns
    /// an empty array once the queue is closed.
    func take(upTo maxCount: Int = 1, maxWait: TimeInterval = 0) -> [Element] {
        condition.lock()
        defer { condition.unlock() }
        while items.isEmpty && !isClosed { condition.wait() }
        if items.isEmpty { return [] }
        if maxCount > 1 && maxWait > 0 && items.count < maxCount && !isClosed {
            let deadline = Date(timeIntervalSinceNow: maxWait)
            while items.count < maxCount && !isClosed && condition.wait(until: deadline) {}
        }
        let taken = Array(items.prefix(maxCount))
        items.removeFirst(taken.count)
        condition.broadcast()  // wake producers blocked in put
        return taken
    }

    /// Removes and returns every queued element matching `predicate` (revoked partitions).
    func removeAll(where predicate: (Element) -> Bool) -> [Element] {
        condition.lock()
        defer { condition.unlock() }
        let removed = Array(items.filter(predicate))
        if !removed.isEmpty {
            items.removeAll(where: predicate)
            condition.broadcast()
        }
        return removed
    }

    /// Refuses further elements, wakes every waiting worker (`take` returns empty arrays
    /// from now on) and returns what was still queued, for the caller to release. A stage
    /// that stops does not work through its backlog: that is how shutdown keeps its deadline.
    @discardableResult
    func close() -> [Element] {
        condition.lock()
        defer { condition.unlock() }
        isClosed = true
        let left = Array(items)
        items.removeAll()
        condition.broadcast()
        return left
    }
}
