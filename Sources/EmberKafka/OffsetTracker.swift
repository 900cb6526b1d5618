/// The at-least-once bookkeeping of one partition: which delivered offsets are still
/// in flight, and the offset that is safe to commit.
///
/// Messages are handed out in offset order (`begin`) and finish in any order
/// (`finish`). The commit watermark is the lowest offset still in flight, or one past
/// the last delivered offset when nothing is in flight. Offsets never delivered (gaps
/// from compaction or transaction markers) therefore never hold the watermark back.
///
///     begin 0,1,2,3; finish 0,1,3  → watermark 2
///     finish 2                      → watermark 4
public struct OffsetTracker: Sendable, Equatable {
    /// Delivered offsets in increasing order from `head`; `done[i]` marks finished ones.
    private var offsets: [Int64] = []
    private var done: [Bool] = []
    private var head = 0
    private var nextAfterLast: Int64?

    public init() {}

    /// The offset to commit (the next one a restarted consumer should read); `nil` before
    /// any message was delivered.
    public var watermark: KafkaOffset? {
        if head < offsets.count { return KafkaOffset(offsets[head]) }
        return nextAfterLast.map { KafkaOffset($0) }
    }

    /// Messages delivered and not finished.
    public private(set) var inFlightCount = 0

    /// Records a delivered message. Offsets arrive in increasing order; an offset at or
    /// below the last one means the consumer rewound to it (offset reset, or librdkafka's
    /// seek after a log truncation). Everything at or above the rewind point will be
    /// delivered again and is forgotten; every unfinished offset below it stays in
    /// flight, so its late finish still counts and the watermark never passes it.
    ///
    ///     begin 100…199; finish 101…199   → watermark 100
    ///     begin 150 (rewind)              → watermark 100 (not 150: 100 is unfinished)
    ///     finish 100                      → watermark 150
    public mutating func begin(_ offset: KafkaOffset) {
        if let next = nextAfterLast, offset.rawValue < next {
            rewind(to: offset.rawValue)
        }
        offsets.append(offset.rawValue)
        done.append(false)
        inFlightCount += 1
        nextAfterLast = offset.rawValue + 1
    }

    /// Forgets the tracked offsets at or above `offset`.
    private mutating func rewind(to offset: Int64) {
        // Search from 0: finished offsets before `head` may lie above the rewind point too.
        let keep = firstIndex(atOrAbove: offset, from: 0)
        inFlightCount -= done[keep...].lazy.filter { !$0 }.count
        offsets.removeSubrange(keep...)
        done.removeSubrange(keep...)
        head = min(head, offsets.count)
        while head < offsets.count, done[head] { head += 1 }
    }

    /// Records a finished message. Returns false for an offset that is not in flight
    /// (never delivered, already finished, or from before a rewind).
    @discardableResult
    public mutating func finish(_ offset: KafkaOffset) -> Bool {
        guard let index = index(of: offset.rawValue), !done[index] else { return false }
        done[index] = true
        inFlightCount -= 1
        while head < offsets.count, done[head] { head += 1 }
        compactIfWorthIt()
        return true
    }

    /// Binary search in the sorted live range.
    private func index(of offset: Int64) -> Int? {
        let low = firstIndex(atOrAbove: offset, from: head)
        return low < offsets.count && offsets[low] == offset ? low : nil
    }

    /// The first index from `start` whose offset is at least `offset` (`offsets.count` if none).
    private func firstIndex(atOrAbove offset: Int64, from start: Int) -> Int {
        var low = start
        var high = offsets.count
        while low < high {
            let mid = (low + high) / 2
            if offsets[mid] < offset { low = mid + 1 } else { high = mid }
        }
        return low
    }

    private mutating func compactIfWorthIt() {
        guard head > 64, head * 2 > offsets.count else { return }
        offsets.removeFirst(head)
        done.removeFirst(head)
        head = 0
    }

    public static func == (a: Self, b: Self) -> Bool {
        Array(a.offsets[a.head...]) == Array(b.offsets[b.head...]) && Array(a.done[a.head...]) == Array(b.done[b.head...])
            && a.nextAfterLast == b.nextAfterLast
    }
}
