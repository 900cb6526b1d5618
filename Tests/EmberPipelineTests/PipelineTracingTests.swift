import EmberKafka
import Foundation
import InMemoryTracing
import Logging
import Testing
import Tracing
@testable import EmberPipeline

/// W3C trace context from input events to output records and dead letters, and the
/// per-stage spans, with the scripted input, output and processor.
@Suite("Pipeline tracing and heartbeats (fakes)")
struct PipelineTracingTests {
    static let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    static let tracestate = "vendor=opaque"

    private func traced(_ message: KafkaMessage, _ headers: [KafkaHeader]) -> KafkaMessage {
        var message = message
        message.headers = headers
        return message
    }

    private func run(_ pipeline: EmbeddingPipeline<FakeProcessor>) throws {
        pipeline.start()
        let stopped = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            try? pipeline.waitUntilFinished()
            stopped.signal()
        }
        #expect(stopped.wait(timeout: .now() + 20) == .success, "the bounded input ends the run")
    }

    @Test("without a tracer, traceparent and tracestate pass through to the output record and the dead letter unchanged")
    func passThrough() throws {
        let headers = [
            KafkaHeader(key: "traceparent", string: Self.traceparent), KafkaHeader(key: "tracestate", string: Self.tracestate),
            KafkaHeader(key: "other", string: "x"),
        ]
        let input = FakeInput(
            [
                .message(traced(fakeMessage(offset: 0, itemID: "good"), headers)),
                .message(traced(fakeMessage(offset: 1, itemID: "permanent-bad"), headers)),
                .message(fakeMessage(offset: 2, itemID: "untraced")),
            ], endWhenEmpty: true)
        let output = FakeOutput()
        let pipeline = try EmbeddingPipeline(
            configuration: fakeConfiguration(), input: input, output: output, processor: FakeProcessor(), logger: Logger(label: "test"))
        try run(pipeline)
        let records = output.records(on: "out")
        let good = try #require(records.first { $0.key == Array("good".utf8) })
        #expect(good.header("traceparent") == Self.traceparent)
        #expect(good.header("tracestate") == Self.tracestate)
        #expect(good.headers.filter { $0.key == "traceparent" }.count == 1)
        let untraced = try #require(records.first { $0.key == Array("untraced".utf8) })
        #expect(untraced.header("traceparent") == nil, "no trace context is invented")
        let letter = try #require(output.records(on: "dlq").first)
        #expect(letter.header("traceparent") == Self.traceparent)
        #expect(letter.header("tracestate") == Self.tracestate)
        #expect(letter.header("other") == "x", "other headers of the event stay on its dead letter")
        #expect(letter.header("ember-error-class") == "media_invalid")
    }

    @Test("tracing.propagate false: no trace headers are added to output records")
    func off() throws {
        let input = FakeInput(
            [.message(traced(fakeMessage(offset: 0, itemID: "good"), [KafkaHeader(key: "traceparent", string: Self.traceparent)]))],
            endWhenEmpty: true)
        let output = FakeOutput()
        let pipeline = try EmbeddingPipeline(
            configuration: fakeConfiguration { $0.propagateTraceContext = false }, input: input, output: output, processor: FakeProcessor(),
            logger: Logger(label: "test"))
        try run(pipeline)
        #expect(output.records(on: "out").first?.header("traceparent") == nil)
    }

    @Test("with a tracer: consume, decode, embed and produce spans in the event's trace; the produce span's context goes out")
    func spans() throws {
        let tracer = InMemoryTracer()
        let upstream = [
            KafkaHeader(key: InMemoryTracer.traceIDKey, string: "trace-upstream"),
            KafkaHeader(key: InMemoryTracer.spanIDKey, string: "span-upstream"),
        ]
        let input = FakeInput(
            [
                .message(traced(fakeMessage(offset: 0, itemID: "good"), upstream)),
                .message(traced(fakeMessage(offset: 1, itemID: "permanent-bad"), upstream)),
            ], endWhenEmpty: true)
        let output = FakeOutput()
        let pipeline = try EmbeddingPipeline(
            configuration: fakeConfiguration(), input: input, output: output, processor: FakeProcessor(), tracer: tracer,
            logger: Logger(label: "test"))
        try run(pipeline)

        let spans = tracer.finishedSpans
        #expect(spans.allSatisfy { $0.traceID == "trace-upstream" }, "\(spans.map(\.traceID))")
        let consumes = spans.filter { $0.operationName == "consume" }
        #expect(consumes.count == 2)
        #expect(consumes.allSatisfy { $0.spanContext.parentSpanID == "span-upstream" })
        let consumeIDs = Set(consumes.map(\.spanID))
        for stage in ["decode", "produce"] {
            let stageSpans = spans.filter { $0.operationName == stage }
            #expect(stageSpans.count == 2, "\(stage): one per item")
            #expect(stageSpans.allSatisfy { consumeIDs.contains($0.spanContext.parentSpanID ?? "") }, "\(stage) spans are children of consume")
        }
        #expect(spans.filter { $0.operationName == "embed" }.count == 1, "only the good item reaches the model")

        let produced = Set(spans.filter { $0.operationName == "produce" }.map(\.spanID))
        let record = try #require(output.records(on: "out").first)
        let letter = try #require(output.records(on: "dlq").first)
        for outgoing in [record, letter] {
            #expect(outgoing.header(InMemoryTracer.traceIDKey) == "trace-upstream")
            #expect(produced.contains(outgoing.header(InMemoryTracer.spanIDKey) ?? ""), "the produce span's context is injected")
            #expect(outgoing.headers.filter { $0.key == InMemoryTracer.spanIDKey }.count == 1, "the upstream span id is replaced")
        }
    }

    @Test("heartbeats: a decode thread held on one item is reported stalled past the bound; idle threads and the consumer are not")
    func heartbeats() throws {
        let processor = FakeProcessor(gated: true)
        let input = FakeInput([.message(fakeMessage(offset: 0, itemID: "held"))])
        let pipeline = try EmbeddingPipeline(
            configuration: fakeConfiguration { $0.decodeConcurrency = 2; $0.embedLanes = 2 }, input: input, output: FakeOutput(), processor: processor,
            logger: Logger(label: "test"))
        pipeline.start()
        #expect(eventually { processor.prepareCount == 1 })
        Thread.sleep(forTimeInterval: 0.3)
        let slots = pipeline.heartbeats.snapshot()
        #expect(Set(slots.map(\.name)) == ["decode.0", "decode.1", "embed.0", "embed.1", "consumer"])
        let stalled = pipeline.heartbeats.stalled(after: 0.2)
        #expect(stalled.map(\.name).count == 1 && stalled[0].name.hasPrefix("decode."), "\(slots)")
        #expect(slots.filter { $0.name.hasPrefix("embed.") }.allSatisfy { $0.busySeconds == nil }, "the embed lanes wait on an empty queue: idle")
        processor.open(1)
        #expect(eventually { pipeline.heartbeats.stalled(after: 0.2).isEmpty })
        pipeline.requestStop()
        try pipeline.waitUntilFinished()
        #expect(pipeline.heartbeats.snapshot().allSatisfy { $0.finished })
    }
}
