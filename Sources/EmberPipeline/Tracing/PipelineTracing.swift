import EmberKafka
import Foundation
import Tracing

/// W3C trace context through the pipeline: the `traceparent` / `tracestate` headers of
/// an input event reach its output record and its dead letter, and each stage of the
/// item is a span (`consume`, `decode`, `embed`, `produce`) through
/// swift-distributed-tracing.
///
/// Without a tracer bootstrapped (the default build has no exporter), spans are no-ops
/// and the input's trace headers are copied to the outgoing record unchanged. With one
/// (swift-otel's, say), its propagator extracts the input's context, the stage spans
/// are children of it, and the `produce` span's context is injected into the outgoing
/// record, so a downstream consumer continues the trace under Ember's hop.
struct PipelineTracing: Sendable {
    /// The header names of W3C Trace Context.
    static let headerNames: Set<String> = ["traceparent", "tracestate"]

    let enabled: Bool
    let tracer: any Tracer

    init(enabled: Bool, tracer: (any Tracer)?) {
        self.enabled = enabled
        self.tracer = tracer ?? InstrumentationSystem.tracer
    }

    /// The item's context, with the input's trace headers remembered for pass-through,
    /// after a `consume` span for the message.
    func consumed(_ message: KafkaMessage) -> InstrumentationContext {
        guard enabled else { return .topLevel }
        var context = InstrumentationContext.topLevel
        tracer.extract(message.headers, into: &context, using: KafkaHeaderCarrier())
        context[IncomingTraceHeadersKey.self] = message.headers.filter { Self.headerNames.contains($0.key) }
        let span = tracer.startSpan("consume", context: context, ofKind: .consumer)
        span.attributes["messaging.system"] = "kafka"
        span.attributes["messaging.destination.name"] = message.topic
        span.attributes["messaging.destination.partition.id"] = "\(message.partition)"
        span.attributes["messaging.kafka.offset"] = Int(message.offset.rawValue)
        span.end()
        var child = span.context
        child[IncomingTraceHeadersKey.self] = context[IncomingTraceHeadersKey.self]
        return child
    }

    /// A span of one stage of the item; end it when the stage is done.
    func startSpan(_ stage: String, _ context: InstrumentationContext, kind: SpanKind = .internal) -> any Span {
        guard enabled else { return NoOpTracer.NoOpSpan(context: context) }
        return tracer.startSpan(stage, context: context, ofKind: kind)
    }

    /// A finished span of a stage that ran for several items at once (one embed batch).
    func recordSpan(_ stage: String, _ context: InstrumentationContext, from start: DefaultTracerClock.Timestamp, batchSize: Int) {
        guard enabled else { return }
        let span = tracer.startSpan(stage, context: context, ofKind: .internal, at: start)
        span.attributes["ember.batch_size"] = batchSize
        span.end()
    }

    /// `headers` with their trace headers replaced by `span`'s context: injected by the
    /// tracer when it has a propagator, else the input's own headers passed through.
    func headers(_ headers: [KafkaHeader], for span: any Span) -> [KafkaHeader] {
        guard enabled else { return headers }
        var result = headers.filter { !Self.headerNames.contains($0.key) }
        let before = result.count
        tracer.inject(span.context, into: &result, using: KafkaHeaderCarrier())
        let injectedTraceParent = result[before...].contains { $0.key == "traceparent" }
        if !injectedTraceParent {
            result += span.context[IncomingTraceHeadersKey.self] ?? []
        }
        return result
    }
}

/// The input's `traceparent` / `tracestate` headers, kept for pass-through.
private enum IncomingTraceHeadersKey: InstrumentationContextKey {
    typealias Value = [KafkaHeader]
    static var nameOverride: String? { "ember-incoming-trace-headers" }
}

/// Reads and writes trace context in Kafka headers (UTF-8 values; the last header of a
/// name wins, as with HTTP).
struct KafkaHeaderCarrier: Extractor, Injector {
    func extract(key: String, from carrier: [KafkaHeader]) -> String? {
        carrier.last { $0.key == key }?.value.map { String(decoding: $0, as: UTF8.self) }
    }

    func inject(_ value: String, forKey key: String, into carrier: inout [KafkaHeader]) {
        carrier.removeAll { $0.key == key }
        carrier.append(KafkaHeader(key: key, string: value))
    }
}
