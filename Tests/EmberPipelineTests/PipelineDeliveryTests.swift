import EmberKafka
import Foundation
import Logging
import Testing
@testable import EmberPipeline

/// The pipeline's delivery logic with a scripted input, output and processor: what is
/// produced, dead-lettered, marked done and committed when items are revoked, retried,
/// resent, refused for good, or the output dies, and how shutdown keeps its deadline.
@Suite("Pipeline delivery (fakes)")
struct PipelineDeliveryTests {
    private func pipeline(
        _ configuration: PipelineConfiguration, _ input: FakeInput, _ output: FakeOutput, _ processor: FakeProcessor
    ) throws -> EmbeddingPipeline<FakeProcessor> {
        try EmbeddingPipeline(configuration: configuration, input: input, output: output, processor: processor, logger: Logger(label: "pipeline-test"))
    }

    /// Waits for the pipeline to stop on another thread; nil when it is still running after `seconds`.
    private func outcome(_ pipeline: EmbeddingPipeline<FakeProcessor>, within seconds: Double) -> Result<Void, any Error>? {
        final class Box: @unchecked Sendable { var result: Result<Void, any Error>? }
        let box = Box()
        let stopped = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            box.result = Result { try pipeline.waitUntilFinished() }
            stopped.signal()  // orders the write before the read below
        }
        guard stopped.wait(timeout: .now() + seconds) == .success else { return nil }
        return box.result
    }

    private func itemIDs(_ records: [KafkaProducerRecord]) -> [String] {
        records.map { String(decoding: $0.key ?? [], as: UTF8.self) }.sorted()
    }

    @Test("every item is produced once and every offset marked done; a bounded input ends the run")
    func happyPath() throws {
        let input = FakeInput((0..<10).map { .message(fakeMessage(partition: Int32($0 % 2), offset: Int64($0 / 2), itemID: "item-\($0)")) }, endWhenEmpty: true)
        let output = FakeOutput()
        let pipeline = try pipeline(fakeConfiguration(), input, output, FakeProcessor())
        pipeline.start()
        let result = try #require(outcome(pipeline, within: 20))
        _ = try result.get()
        #expect(itemIDs(output.records(on: "out")) == (0..<10).map { "item-\($0)" }.sorted())
        #expect(input.done(fakePartition(0)).sorted() == [0, 1, 2, 3, 4])
        #expect(input.done(fakePartition(1)).sorted() == [0, 1, 2, 3, 4])
        #expect(input.isClosed)
    }

    @Test("a lane embedding while the other is idle is lent its cores; two lanes busy side by side get one each; off, always one",
          arguments: [true, false])
    func lendIdleCores(lend: Bool) throws {
        // Each embed call takes 1.5 s, so the second of two items sent together starts
        // while the first is still running.
        let processor = FakeProcessor(embedsOneByOne: true, embedDelay: 1.5)
        let input = FakeInput([.message(fakeMessage(offset: 0, itemID: "alone"))])
        let output = FakeOutput()
        let pipeline = try pipeline(fakeConfiguration { $0.embedLanes = 2; $0.lendIdleCores = lend }, input, output, processor)
        pipeline.start()
        #expect(eventually { output.records(on: "out").count == 1 })
        input.push([.message(fakeMessage(offset: 1, itemID: "pair-a")), .message(fakeMessage(offset: 2, itemID: "pair-b"))])
        #expect(eventually { output.records(on: "out").count == 3 })
        pipeline.requestStop()
        _ = try #require(outcome(pipeline, within: 20)).get()
        let lanes = processor.lanesPerCall
        #expect(lanes.count == 3 && processor.embedConcurrency == 2, "\(lanes), \(processor.embedConcurrency) at once")
        if lend {
            #expect(lanes[0] == 2, "the lone item gets both lanes' cores")
            #expect(lanes[1...].sorted() == [1, 2], "of two side by side, the first is lent the idle lane, the second is not")
        } else {
            #expect(lanes == [1, 1, 1])
        }
    }

    @Test("embed lanes run the model on different items at the same time; one-by-one lanes take one item per call")
    func lanes() throws {
        let processor = FakeProcessor(embedsOneByOne: true, embedDelay: 0.05)
        let input = FakeInput((0..<12).map { .message(fakeMessage(offset: Int64($0), itemID: "lane-\($0)")) }, endWhenEmpty: true)
        let output = FakeOutput()
        let pipeline = try pipeline(fakeConfiguration { $0.embedLanes = 3; $0.decodeConcurrency = 3 }, input, output, processor)
        pipeline.start()
        _ = try #require(outcome(pipeline, within: 20)).get()
        #expect(itemIDs(output.records(on: "out")) == (0..<12).map { "lane-\($0)" }.sorted())
        #expect(processor.embedConcurrency >= 2, "lanes overlapped: at most \(processor.embedConcurrency) at once")
        #expect(processor.embedConcurrency <= 3)
        #expect(input.done(fakePartition(0)).sorted() == Array(0..<12))
    }

    @Test("a revoked partition's in-flight items are dropped: not produced, not marked done; the kept partition finishes")
    func revoke() throws {
        let processor = FakeProcessor(gated: true)
        let events: [KafkaConsumerEvent] = (0..<4).flatMap { offset in
            [Int32(0), 1].map { .message(fakeMessage(partition: $0, offset: Int64(offset), itemID: "p\($0)-\(offset)")) }
        }
        let input = FakeInput(events)
        let output = FakeOutput()
        let pipeline = try pipeline(fakeConfiguration(), input, output, processor)
        pipeline.start()
        #expect(eventually { processor.prepareCount >= 2 }, "two decoders hold items at the gate")
        input.push([.revoked([fakePartition(0)])])
        Thread.sleep(forTimeInterval: 0.1)  // the revoke is served before the gate opens
        processor.open(100)
        #expect(eventually { input.done(fakePartition(1)).count == 4 })
        Thread.sleep(forTimeInterval: 0.2)
        pipeline.requestStop()
        _ = try #require(outcome(pipeline, within: 20)).get()
        #expect(input.done(fakePartition(0)).isEmpty, "nothing of the revoked partition is committed")
        #expect(itemIDs(output.records(on: "out")) == (0..<4).map { "p1-\($0)" }, "no output for the revoked partition")
        #expect(input.done(fakePartition(1)).sorted() == [0, 1, 2, 3])
    }

    @Test("at the drain deadline the stages stop taking work: queued items are left for the next owner, not decoded and produced late")
    func drainDeadline() throws {
        let count = 40
        let processor = FakeProcessor(prepareDelay: 0.2)
        let input = FakeInput((0..<count).map { .message(fakeMessage(offset: Int64($0), itemID: "slow-\($0)")) })
        let output = FakeOutput()
        let pipeline = try pipeline(fakeConfiguration { $0.drainTimeoutSeconds = 0.3; $0.decodeConcurrency = 2 }, input, output, processor)
        pipeline.start()
        #expect(eventually { processor.prepareCount >= 2 })
        pipeline.requestStop()
        _ = try #require(outcome(pipeline, within: 20), "stopped").get()
        // Two decoders at 0.2 s per item: within the 0.3 s deadline plus the items in
        // hand at the deadline, at most about 8 are started; before the fix all 40 were.
        #expect(processor.prepareCount <= 10, "\(processor.prepareCount) of \(count) items were decoded")
        let produced = Set(itemIDs(output.records(on: "out")))
        let done = input.allDone
        #expect(done.count == produced.count, "exactly the produced items are marked done")
        #expect(done.allSatisfy { produced.contains("slow-\($0)") })
        #expect(input.isClosed)
    }

    @Test("a transient failure is retried with backoff and then succeeds; past max attempts it is dead-lettered with its attempts")
    func retry() throws {
        let processor = FakeProcessor()
        let input = FakeInput([
            .message(fakeMessage(offset: 0, itemID: "transient2-recovers")),
            .message(fakeMessage(offset: 1, itemID: "transient9-gives-up")),
        ], endWhenEmpty: true)
        let output = FakeOutput()
        let pipeline = try pipeline(fakeConfiguration { $0.maxAttempts = 3 }, input, output, processor)
        pipeline.start()
        _ = try #require(outcome(pipeline, within: 20)).get()
        #expect(processor.attempts("transient2-recovers") == 3)
        #expect(processor.attempts("transient9-gives-up") == 3)
        #expect(itemIDs(output.records(on: "out")) == ["transient2-recovers"])
        let deadLetter = try #require(output.records(on: "dlq").first)
        #expect(deadLetter.header(KafkaDeadLetter.errorClassHeader) == "media_unavailable")
        #expect(deadLetter.header(KafkaDeadLetter.attemptsHeader) == "3")
        #expect(input.done(fakePartition(0)).sorted() == [0, 1])
        #expect(pipeline.metrics.deadLettersTotal == 1)
    }

    @Test("a delivery that fails transiently is sent again until acknowledged, then marked done")
    func resend() throws {
        let output = FakeOutput { record, attempt in
            record.topic == "out" && attempt <= 2 ? .fail(KafkaError(testCode: .requestTimedOut, message: "broker hiccup")) : .deliver
        }
        let input = FakeInput([.message(fakeMessage(offset: 0, itemID: "resent"))], endWhenEmpty: true)
        let pipeline = try pipeline(fakeConfiguration(), input, output, FakeProcessor())
        pipeline.start()
        _ = try #require(outcome(pipeline, within: 20)).get()
        #expect(itemIDs(output.records(on: "out")) == ["resent"])
        #expect(output.sendCount == 3)
        #expect(input.done(fakePartition(0)) == [0])
        #expect(output.records(on: "dlq").isEmpty)
    }

    @Test("a permanent item failure is dead-lettered with its class and the original value")
    func permanentItemFailure() throws {
        let input = FakeInput([.message(fakeMessage(offset: 0, itemID: "permanent-1"))], endWhenEmpty: true)
        let output = FakeOutput()
        let pipeline = try pipeline(fakeConfiguration(), input, output, FakeProcessor())
        pipeline.start()
        _ = try #require(outcome(pipeline, within: 20)).get()
        let deadLetter = try #require(output.records(on: "dlq").first)
        #expect(deadLetter.header(KafkaDeadLetter.errorClassHeader) == "media_invalid")
        #expect(deadLetter.value == fakeMessage(offset: 0, itemID: "permanent-1").value)
        #expect(input.done(fakePartition(0)) == [0])
    }

    @Test("an output record refused for good (too large, at send or at delivery) dead-letters the item instead of resending forever")
    func outputRefused() throws {
        let tooLarge = KafkaError(testCode: .messageSizeTooLarge, message: "too large")
        let output = FakeOutput { record, _ in
            guard record.topic == "out" else { return .deliver }
            switch String(decoding: record.key ?? [], as: UTF8.self) {
            case "refused-at-send": return .refuseToEnqueue(tooLarge)
            case "refused-at-delivery": return .fail(KafkaError(testCode: .topicAuthorizationFailed, message: "not authorized"))
            default: return .deliver
            }
        }
        let input = FakeInput([
            .message(fakeMessage(offset: 0, itemID: "refused-at-send")),
            .message(fakeMessage(offset: 1, itemID: "refused-at-delivery")),
            .message(fakeMessage(offset: 2, itemID: "fine")),
        ], endWhenEmpty: true)
        let pipeline = try pipeline(fakeConfiguration(), input, output, FakeProcessor())
        pipeline.start()
        _ = try #require(outcome(pipeline, within: 20), "the partition is not pinned").get()
        #expect(itemIDs(output.records(on: "out")) == ["fine"])
        let deadLetters = output.records(on: "dlq")
        #expect(itemIDs(deadLetters) == ["refused-at-delivery", "refused-at-send"])
        #expect(deadLetters.allSatisfy { $0.header(KafkaDeadLetter.errorClassHeader) == "output_rejected" })
        #expect(input.done(fakePartition(0)).sorted() == [0, 1, 2])
    }

    @Test("a dead letter refused for good is replaced by a small one without the original value; if that is refused too, the worker stops without committing the item")
    func deadLetterRefused() throws {
        let tooLarge = KafkaError(testCode: .messageSizeTooLarge, message: "too large")
        // The event itself is fine, its output and its full dead letter are too large.
        let smallOnly = FakeOutput { record, _ in
            record.topic == "out" || !record.value.isEmpty ? .fail(tooLarge) : .deliver
        }
        let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        var huge = fakeMessage(offset: 0, itemID: "huge")
        huge.headers = [KafkaHeader(key: "traceparent", string: traceparent), KafkaHeader(key: "x-big", string: String(repeating: "x", count: 4096))]
        let input = FakeInput([.message(huge)], endWhenEmpty: true)
        let pipeline = try pipeline(fakeConfiguration(), input, smallOnly, FakeProcessor())
        pipeline.start()
        _ = try #require(outcome(pipeline, within: 20)).get()
        let minimal = try #require(smallOnly.records(on: "dlq").first)
        #expect(minimal.value.isEmpty)
        #expect(minimal.header(KafkaDeadLetter.errorClassHeader) == "output_rejected")
        #expect(minimal.header(KafkaDeadLetter.sourceOffsetHeader) == "0")
        #expect(minimal.header(KafkaDeadLetter.errorMessageHeader)?.contains("original event is left out") == true)
        #expect(minimal.header("traceparent") == traceparent, "the trace context survives")
        #expect(minimal.header("x-big") == nil, "other original headers are left out")
        #expect(input.done(fakePartition(0)) == [0])

        // Nothing gets through to the dead-letter topic: stop with a clear error.
        let nothing = FakeOutput { record, _ in record.topic == "dlq" || record.key == Array("doomed".utf8) ? .fail(tooLarge) : .deliver }
        let second = FakeInput([
            .message(fakeMessage(offset: 0, itemID: "ok")), .message(fakeMessage(offset: 1, itemID: "doomed")),
        ])
        let stopping = try self.pipeline(fakeConfiguration(), second, nothing, FakeProcessor())
        stopping.start()
        let result = try #require(outcome(stopping, within: 20), "the worker stops by itself")
        #expect(throws: PipelineError.self) { try result.get() }
        #expect(second.done(fakePartition(0)) == [0], "the doomed item is not committed")
        #expect(second.isClosed)
    }

    @Test("a fatal output error stops the worker at once with that error; only acknowledged work is marked done")
    func fatalOutput() throws {
        let output = FakeOutput { record, _ in
            record.key == Array("fatal".utf8) ? .fail(KafkaError(testCode: .fatal, message: "producer fenced", isFatal: true)) : .deliver
        }
        let input = FakeInput(
            [.message(fakeMessage(offset: 0, itemID: "before"))]
                + [.message(fakeMessage(offset: 1, itemID: "fatal"))]
                + (2..<30).map { .message(fakeMessage(offset: Int64($0), itemID: "after-\($0)")) })
        let processor = FakeProcessor(prepareDelay: 0.02)
        let pipeline = try pipeline(fakeConfiguration { $0.drainTimeoutSeconds = 60 }, input, output, processor)
        pipeline.start()
        let result = try #require(outcome(pipeline, within: 10), "a fatal error stops the worker without a stop request")
        let error = #expect(throws: KafkaError.self) { try result.get() }
        #expect(error?.isFatal == true)
        #expect(!input.allDone.contains(1), "the item whose output failed is not committed")
        let produced = Set(itemIDs(output.records(on: "out")).map { $0 == "before" ? 0 : Int64($0.dropFirst("after-".count))! })
        #expect(input.allDone == produced, "done offsets are exactly the acknowledged ones")
        #expect(processor.prepareCount < 30, "work stops: \(processor.prepareCount) items decoded")
        #expect(input.isClosed)
    }
}
