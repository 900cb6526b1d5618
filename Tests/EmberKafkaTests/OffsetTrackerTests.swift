import Testing
@testable import EmberKafka

@Suite("OffsetTracker")
struct OffsetTrackerTests {
    @Test("out-of-order completion commits only the contiguous watermark")
    func outOfOrder() {
        var tracker = OffsetTracker()
        #expect(tracker.watermark == nil)
        for offset in 0...3 { tracker.begin(KafkaOffset(Int64(offset))) }
        #expect(tracker.watermark == KafkaOffset(0))
        let ok1 = tracker.finish(KafkaOffset(0))
        #expect(ok1)
        let ok2 = tracker.finish(KafkaOffset(1))
        #expect(ok2)
        let ok3 = tracker.finish(KafkaOffset(3))
        #expect(ok3)
        #expect(tracker.watermark == KafkaOffset(2))
        #expect(tracker.inFlightCount == 1)
        let ok4 = tracker.finish(KafkaOffset(2))
        #expect(ok4)
        #expect(tracker.watermark == KafkaOffset(4))
        #expect(tracker.inFlightCount == 0)
    }

    @Test("offsets never delivered (compaction, transaction markers) do not hold the watermark")
    func gaps() {
        var tracker = OffsetTracker()
        for offset: Int64 in [10, 11, 15, 20] { tracker.begin(KafkaOffset(offset)) }
        tracker.finish(KafkaOffset(10))
        tracker.finish(KafkaOffset(11))
        #expect(tracker.watermark == KafkaOffset(15))
        tracker.finish(KafkaOffset(20))
        #expect(tracker.watermark == KafkaOffset(15))
        tracker.finish(KafkaOffset(15))
        #expect(tracker.watermark == KafkaOffset(21))
    }

    @Test("finishing an offset twice or one never delivered is refused")
    func unknownOffsets() {
        var tracker = OffsetTracker()
        tracker.begin(KafkaOffset(5))
        let ok5 = tracker.finish(KafkaOffset(4))
        #expect(!ok5)
        let ok6 = tracker.finish(KafkaOffset(6))
        #expect(!ok6)
        let ok7 = tracker.finish(KafkaOffset(5))
        #expect(ok7)
        let ok8 = tracker.finish(KafkaOffset(5))
        #expect(!ok8)
        #expect(tracker.watermark == KafkaOffset(6))
    }

    @Test("a partial rewind keeps every unfinished offset below it: the late finish of 100 still holds the watermark")
    func partialRewindKeepsUnfinishedBelow() {
        // 100 in flight, 101–199 done; librdkafka seeks back to 150 after a log truncation.
        var tracker = OffsetTracker()
        for offset: Int64 in 100...199 { tracker.begin(KafkaOffset(offset)) }
        for offset: Int64 in 101...199 { tracker.finish(KafkaOffset(offset)) }
        #expect(tracker.watermark == KafkaOffset(100))
        tracker.begin(KafkaOffset(150))
        #expect(tracker.watermark == KafkaOffset(100), "100 is still unfinished: committing past it would lose it")
        #expect(tracker.inFlightCount == 2, "100 and the re-delivered 150")
        let lateFinish = tracker.finish(KafkaOffset(100))
        #expect(lateFinish, "the late finish of 100 is accepted")
        #expect(tracker.watermark == KafkaOffset(150), "101–149 were done, 150 is in flight again")
        for offset: Int64 in 151...160 { tracker.begin(KafkaOffset(offset)) }
        for offset: Int64 in 150...160 { tracker.finish(KafkaOffset(offset)) }
        #expect(tracker.watermark == KafkaOffset(161))
        #expect(tracker.inFlightCount == 0)
    }

    @Test("a rewind below everything tracked starts over from there and never raises the watermark")
    func fullRewind() {
        var tracker = OffsetTracker()
        for offset: Int64 in 0...9 { tracker.begin(KafkaOffset(offset)) }
        tracker.finish(KafkaOffset(0))
        tracker.finish(KafkaOffset(5))
        tracker.begin(KafkaOffset(3))  // consumer reset to 3: 1 and 2 stay in flight
        #expect(tracker.watermark == KafkaOffset(1))
        #expect(tracker.inFlightCount == 3)
        let stale = tracker.finish(KafkaOffset(7))
        #expect(!stale, "7 is at or above the rewind point: it will be delivered again")
        tracker.finish(KafkaOffset(1))
        tracker.finish(KafkaOffset(2))
        #expect(tracker.watermark == KafkaOffset(3))
        tracker.finish(KafkaOffset(3))
        #expect(tracker.watermark == KafkaOffset(4))
    }

    @Test("random rewinds never let the watermark pass an unfinished offset")
    func randomRewinds() {
        var generator = SplitMix64(seed: 11)
        for _ in 0..<200 {
            var tracker = OffsetTracker()
            var unfinished = Set<Int64>()
            var next: Int64 = 0
            for _ in 0..<60 {
                switch generator.next() % 4 {
                case 0 where next > 0:
                    // librdkafka rewinds: to anywhere below the next offset.
                    next = Int64(generator.next() % UInt64(next))
                    unfinished = unfinished.filter { $0 < next }
                    tracker.begin(KafkaOffset(next))
                    unfinished.insert(next)
                    next += 1
                case 1 where !unfinished.isEmpty:
                    let offset = unfinished.sorted()[Int(generator.next() % UInt64(unfinished.count))]
                    let accepted = tracker.finish(KafkaOffset(offset))
                    #expect(accepted)
                    unfinished.remove(offset)
                default:
                    tracker.begin(KafkaOffset(next))
                    unfinished.insert(next)
                    next += 1
                }
                if let lowest = unfinished.min() {
                    #expect(tracker.watermark!.rawValue <= lowest, "watermark passed unfinished \(lowest)")
                    #expect(tracker.watermark!.rawValue == lowest)
                }
                #expect(tracker.inFlightCount == unfinished.count)
            }
        }
    }

    @Test("a long random completion order ends at one past the last offset, never ahead of an unfinished one")
    func longRandomOrder() {
        var tracker = OffsetTracker()
        let count: Int64 = 10_000
        for offset in 0..<count { tracker.begin(KafkaOffset(offset)) }
        var generator = SplitMix64(seed: 7)
        var order = Array(0..<count)
        order.shuffle(using: &generator)
        var finished = Set<Int64>()
        for (step, offset) in order.enumerated() {
            let ok11 = tracker.finish(KafkaOffset(offset))
            #expect(ok11)
            finished.insert(offset)
            if step % 997 == 0 {
                var expected: Int64 = 0
                while finished.contains(expected) { expected += 1 }
                #expect(tracker.watermark == KafkaOffset(expected))
            }
        }
        #expect(tracker.watermark == KafkaOffset(count))
        #expect(tracker.inFlightCount == 0)
    }
}

/// A small deterministic generator so the shuffled order is the same on every run.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
