import Foundation
import Testing
import EmberKafka
@testable import EmberPipeline

@Suite("Bounded stage queue")
struct BlockingQueueTests {
    @Test("take returns up to maxCount in FIFO order")
    func fifoBatches() {
        let queue = BlockingQueue<Int>(capacity: 10)
        for i in 0..<5 { queue.force(i) }
        #expect(queue.take(upTo: 3) == [0, 1, 2])
        #expect(queue.take(upTo: 3) == [3, 4])
        #expect(queue.count == 0)
    }

    @Test("a partial batch waits for more items up to maxWait")
    func batchWaitsForMore() {
        let queue = BlockingQueue<Int>(capacity: 10)
        queue.force(1)
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.05) { queue.force(2) }
        // Generous wait: the second item arrives long before it ends.
        #expect(queue.take(upTo: 2, maxWait: 5) == [1, 2])
    }

    @Test("a partial batch is returned when maxWait passes")
    func batchTimesOut() {
        let queue = BlockingQueue<Int>(capacity: 10)
        queue.force(1)
        #expect(queue.take(upTo: 8, maxWait: 0.01) == [1])
    }

    @Test("put blocks while full and proceeds when a worker takes")
    func putBlocksWhenFull() {
        let queue = BlockingQueue<Int>(capacity: 1)
        #expect(queue.put(1))
        let putDone = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            _ = queue.put(2)
            putDone.signal()
        }
        #expect(putDone.wait(timeout: .now() + 0.1) == .timedOut, "put returned while the queue was full")
        #expect(queue.take() == [1])
        #expect(putDone.wait(timeout: .now() + 5) == .success)
        #expect(queue.take() == [2])
    }

    @Test("close wakes waiting workers, refuses puts and hands back what was queued instead of letting workers drain it")
    func close() {
        let queue = BlockingQueue<Int>(capacity: 2)
        queue.force(7)
        queue.force(9)
        #expect(queue.close() == [7, 9])
        #expect(!queue.put(8))
        #expect(!queue.force(8))
        #expect(queue.take() == [])

        let empty = BlockingQueue<Int>(capacity: 1)
        let woke = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            _ = empty.take()
            woke.signal()
        }
        empty.close()
        #expect(woke.wait(timeout: .now() + 5) == .success)
    }

    @Test("removeAll takes matching items out and frees room")
    func removeMatching() {
        let queue = BlockingQueue<Int>(capacity: 4)
        for i in 0..<4 { queue.force(i) }
        #expect(queue.removeAll { $0 % 2 == 0 } == [0, 2])
        #expect(queue.take(upTo: 4) == [1, 3])
    }
}

@Suite("In-flight window")
struct InFlightTrackerTests {
    private let p0 = KafkaTopicPartition(topic: "t", partition: .init(0))
    private let p1 = KafkaTopicPartition(topic: "t", partition: .init(1))

    @Test("pauses at the high mark and resumes below the low mark")
    func hysteresis() {
        var tracker = InFlightTracker(pauseAt: 3, resumeBelow: 2)
        let tickets = (0..<3).map { tracker.admit(p0, offset: .init(Int64($0))) }
        #expect(tracker.wantsPause)
        let first = tracker.finish(tickets[0])
        #expect(first)
        #expect(tracker.wantsPause, "2 in flight is not below the resume mark of 2")
        let second = tracker.finish(tickets[1])
        #expect(second)
        #expect(!tracker.wantsPause)
        #expect(tracker.inFlight == 1)
    }

    @Test("revoked partitions' tickets become stale; others stay current")
    func revocation() {
        var tracker = InFlightTracker(pauseAt: 10, resumeBelow: 5)
        let old0 = tracker.admit(p0, offset: .init(5))
        let old1 = tracker.admit(p1, offset: .init(9))
        tracker.revoke([p0])
        let new0 = tracker.admit(p0, offset: .init(5))
        #expect(!tracker.isCurrent(old0))
        #expect(tracker.isCurrent(old1))
        #expect(tracker.isCurrent(new0))
        #expect(tracker.inFlight == 2, "the revoked partition's slot was released at once")
        let staleDone = tracker.finish(old0)
        #expect(!staleDone, "a stale ticket must not be marked done")
        #expect(tracker.inFlight == 2, "a stale ticket's late finish does not count twice")
        let otherDone = tracker.finish(old1)
        #expect(otherDone)
        let newDone = tracker.finish(new0)
        #expect(newDone)
        #expect(tracker.inFlight == 0)
    }

    @Test("a revocation that empties the window resumes a paused input")
    func revocationResumes() {
        var tracker = InFlightTracker(pauseAt: 3, resumeBelow: 2)
        for offset in 0..<3 { _ = tracker.admit(p0, offset: .init(Int64(offset))) }
        #expect(tracker.wantsPause)
        tracker.revoke([p0])
        #expect(!tracker.wantsPause)
        #expect(tracker.inFlight == 0)
    }

    @Test("a partition at its fair share is held back while another has a backlog, and released below half of it")
    func fairShare() {
        var tracker = InFlightTracker(pauseAt: 8, resumeBelow: 4)
        let tickets = (0..<4).map { tracker.admit(p0, offset: .init(Int64($0))) }
        #expect(tracker.holdBack(backlogged: [p0, p1]) == [p0], "4 of 8 is partition 0's share of two")
        #expect(tracker.holdBack(backlogged: [p0]) == [], "nobody else waits: partition 0 may take the whole window")
        #expect(tracker.holdBack(backlogged: [p0, p1]) == [p0])
        _ = tracker.finish(tickets[0])
        _ = tracker.finish(tickets[1])
        #expect(tracker.holdBack(backlogged: [p0, p1]) == [p0], "2 in flight is not below the release mark of 2")
        _ = tracker.finish(tickets[2])
        #expect(tracker.holdBack(backlogged: [p0, p1]) == [], "released below half its share")
        let more = (4..<8).map { tracker.admit(p0, offset: .init(Int64($0))) }
        #expect(tracker.holdBack(backlogged: [p0, p1]) == [p0])
        tracker.revoke([p0])
        #expect(tracker.heldBack.isEmpty, "a revoked partition is no longer held back")
        #expect(!more.contains { tracker.isCurrent($0) })
    }

    @Test("the share counts the partitions with work: three with a backlog share the window in thirds, rounded up")
    func shareOfThree() {
        let p2 = KafkaTopicPartition(topic: "t", partition: .init(2))
        var tracker = InFlightTracker(pauseAt: 8, resumeBelow: 4)
        for offset in 0..<2 { _ = tracker.admit(p0, offset: .init(Int64(offset))) }
        #expect(tracker.holdBack(backlogged: [p0, p1, p2]) == [], "2 is below a share of 3")
        _ = tracker.admit(p0, offset: .init(2))
        #expect(tracker.holdBack(backlogged: [p0, p1, p2]) == [p0])
        #expect(tracker.holdBack(backlogged: [p0, p1]) == [p0], "two with work: a share of 4, but 3 is not below its release mark of 2")
    }
}
