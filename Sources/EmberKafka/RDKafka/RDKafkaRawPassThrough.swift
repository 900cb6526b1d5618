import CRdKafka
import Foundation

/// The reference for `ember bench kafka`: the same consume → produce pass-through as
/// Ember's Swift layer, written directly against librdkafka's C API the way a C
/// program would (one thread, delivery reports served by `rd_kafka_poll` in the loop,
/// no per-message offset bookkeeping). Lives here because C calls stay in this folder.
package enum KafkaRawPassThrough {
    /// Copies `messages` messages from `input` to `output` and returns the time from the
    /// first consumed message to the last delivery report.
    package static func run(
        consumer consumerConfiguration: KafkaConsumerConfiguration,
        producer producerConfiguration: KafkaProducerConfiguration,
        output: String, messages: Int
    ) throws(KafkaError) -> Duration {
        let consumer = try RDKafkaClient(kind: .consumer, properties: consumerConfiguration.librdkafkaProperties())
        let producerConf = try RDKafkaConfig.make(producerConfiguration.librdkafkaProperties())
        let counter = DeliveryCounter()
        rd_kafka_conf_set_opaque(producerConf, Unmanaged.passUnretained(counter).toOpaque())
        rd_kafka_conf_set_dr_msg_cb(producerConf, rawDeliveryCallback)
        var errorBuffer = [CChar](repeating: 0, count: 512)
        guard let producer = rd_kafka_new(RD_KAFKA_PRODUCER, producerConf, &errorBuffer, errorBuffer.count) else {
            rd_kafka_conf_destroy(producerConf)
            throw .client("cannot create producer: " + String(cBuffer: errorBuffer))
        }
        defer { rd_kafka_destroy(producer) }
        try consumer.subscribe(topics: consumerConfiguration.topics)

        var start: ContinuousClock.Instant?
        let giveUp = ContinuousClock.now.advanced(by: .seconds(300))
        while counter.delivered + counter.failed < messages {
            if ContinuousClock.now > giveUp { throw .client("raw pass-through did not finish in 300 s", code: .timedOut) }
            rd_kafka_poll(producer, 0)
            guard let message = rd_kafka_consumer_poll(consumer.handle, 100) else { continue }
            defer { rd_kafka_message_destroy(message) }
            guard message.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR else { continue }
            if start == nil { start = ContinuousClock.now }
            let m = message.pointee
            while true {
                let error = ember_rd_kafka_produce(
                    producer, output, ember_rd_kafka_partition_ua(), m.payload, m.len, m.key, m.key_len, nil, 0, nil)
                if error == RD_KAFKA_RESP_ERR_NO_ERROR { break }
                if error != RD_KAFKA_RESP_ERR__QUEUE_FULL { throw KafkaError(code: error) }
                rd_kafka_poll(producer, 10)
            }
        }
        let elapsed = ContinuousClock.now - (start ?? .now)
        if counter.failed > 0 { throw .client("\(counter.failed) raw deliveries failed") }
        rd_kafka_commit(consumer.handle, nil, 0)
        try? consumer.closeConsumer()
        return elapsed
    }
}

private final class DeliveryCounter {
    var delivered = 0
    var failed = 0
}

private func rawDeliveryCallback(
    _ rk: OpaquePointer?, _ message: UnsafePointer<rd_kafka_message_t>?, _ opaque: UnsafeMutableRawPointer?
) {
    guard let message, let opaque else { return }
    let counter = Unmanaged<DeliveryCounter>.fromOpaque(opaque).takeUnretainedValue()
    if message.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR { counter.delivered += 1 } else { counter.failed += 1 }
}
