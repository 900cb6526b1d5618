import CRdKafka

/// Owns one `rd_kafka_t` handle. Every librdkafka call of the package goes through
/// this folder; callers above see Swift values only.
///
/// Not thread-safe by itself: a client is driven from one serial Dispatch queue or thread.
final class RDKafkaClient: @unchecked Sendable {
    enum Kind { case producer, consumer }

    /// Outcome of one produced message, reported from `poll`/`flush`.
    struct DeliveryReport: Sendable, Equatable {
        var messageID: UInt
        var topic: String
        var partition: KafkaPartition
        var offset: KafkaOffset?
        var error: KafkaError?
    }

    let handle: OpaquePointer
    let kind: Kind
    /// Filled by the delivery-report callback, which runs inside `rd_kafka_poll`/`flush`
    /// on the calling thread, so no lock is needed while one thread drives the client.
    private let deliveries = DeliveryReportSink()

    init(kind: Kind, properties: [String: String]) throws(KafkaError) {
        let conf = try RDKafkaConfig.make(properties)
        // The sink outlives the handle (both are owned by self and the handle is
        // destroyed in deinit first), so an unretained reference is safe.
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(deliveries).toOpaque())
        if kind == .producer {
            rd_kafka_conf_set_dr_msg_cb(conf, deliveryReportCallback)
        }
        var errorBuffer = [CChar](repeating: 0, count: 512)
        let type = kind == .producer ? RD_KAFKA_PRODUCER : RD_KAFKA_CONSUMER
        // On success rd_kafka_new takes ownership of conf; on failure it stays ours.
        guard let handle = rd_kafka_new(type, conf, &errorBuffer, errorBuffer.count) else {
            rd_kafka_conf_destroy(conf)
            throw .client("cannot create Kafka client: " + String(cBuffer: errorBuffer))
        }
        self.handle = handle
        self.kind = kind
        if kind == .consumer {
            // Route the main event queue into consumer_poll so one call serves both.
            rd_kafka_poll_set_consumer(handle)
        }
    }

    deinit {
        rd_kafka_destroy(handle)
    }

    // MARK: producing

    /// Enqueues one message. `messageID` comes back in its delivery report.
    func produce(
        topic: String, partition: KafkaPartition? = nil, key: [UInt8]?, value: [UInt8],
        headers: [KafkaHeader], timestampMilliseconds: Int64 = 0, messageID: UInt
    ) throws(KafkaError) {
        var cHeaders: OpaquePointer? = nil
        if !headers.isEmpty {
            cHeaders = rd_kafka_headers_new(headers.count)
            for header in headers {
                if let value = header.value {
                    _ = value.withUnsafeBytes { bytes in
                        rd_kafka_header_add(cHeaders, header.key, -1, bytes.baseAddress, bytes.count)
                    }
                } else {
                    rd_kafka_header_add(cHeaders, header.key, -1, nil, 0)
                }
            }
        }
        let error = value.withUnsafeBytes { valueBytes in
            withOptionalBytes(key) { keyPointer, keyCount in
                ember_rd_kafka_produce(
                    handle, topic, partition?.rawValue ?? ember_rd_kafka_partition_ua(),
                    valueBytes.baseAddress, valueBytes.count, keyPointer, keyCount,
                    cHeaders, timestampMilliseconds, UnsafeMutableRawPointer(bitPattern: messageID))
            }
        }
        if error != RD_KAFKA_RESP_ERR_NO_ERROR {
            // librdkafka takes the headers only when the message was accepted.
            if let cHeaders { rd_kafka_headers_destroy(cHeaders) }
            throw KafkaError(code: error, isRetriable: error == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        }
    }

    /// Serves callbacks (delivery reports, errors) for up to `timeoutMilliseconds`.
    @discardableResult
    func poll(timeoutMilliseconds: Int32) -> Int32 {
        rd_kafka_poll(handle, timeoutMilliseconds)
    }

    /// Waits until every enqueued message is delivered or failed, up to the timeout.
    func flush(timeoutMilliseconds: Int32) throws(KafkaError) {
        let error = rd_kafka_flush(handle, timeoutMilliseconds)
        if error != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(code: error) }
    }

    /// Delivery reports collected since the last call.
    func takeDeliveryReports() -> [DeliveryReport] {
        deliveries.take()
    }

    /// Number of messages still waiting for a delivery report.
    var outstandingCount: Int32 { rd_kafka_outq_len(handle) }

    // MARK: consuming

    func subscribe(topics: [String]) throws(KafkaError) {
        let list = rd_kafka_topic_partition_list_new(Int32(topics.count))
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for topic in topics {
            rd_kafka_topic_partition_list_add(list, topic, ember_rd_kafka_partition_ua())
        }
        let error = rd_kafka_subscribe(handle, list)
        if error != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(code: error) }
    }

    /// Returns the next message, `nil` when none arrived within the timeout or the
    /// event was informational (partition EOF). Consumer errors throw.
    func consumerPoll(timeoutMilliseconds: Int32) throws(KafkaError) -> KafkaMessage? {
        guard let pointer = rd_kafka_consumer_poll(handle, timeoutMilliseconds) else { return nil }
        defer { rd_kafka_message_destroy(pointer) }
        let message = pointer.pointee
        switch message.err {
        case RD_KAFKA_RESP_ERR_NO_ERROR:
            return KafkaMessage(copying: pointer)
        case RD_KAFKA_RESP_ERR__PARTITION_EOF:
            return nil
        default:
            let detail = String(cString: rd_kafka_message_errstr(pointer))
            throw KafkaError(code: message.err, message: detail)
        }
    }

    /// Commits the consumer's current positions synchronously.
    func commit() throws(KafkaError) {
        let error = rd_kafka_commit(handle, nil, 0)
        if error != RD_KAFKA_RESP_ERR_NO_ERROR && error != RD_KAFKA_RESP_ERR__NO_OFFSET {
            throw KafkaError(code: error)
        }
    }

    /// Leaves the consumer group and stops fetching. Call before the client is released.
    func closeConsumer() throws(KafkaError) {
        let error = rd_kafka_consumer_close(handle)
        if error != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(code: error) }
    }
}

/// Collects delivery reports from librdkafka's callback.
private final class DeliveryReportSink {
    private var reports: [RDKafkaClient.DeliveryReport] = []

    func append(_ report: RDKafkaClient.DeliveryReport) { reports.append(report) }

    func take() -> [RDKafkaClient.DeliveryReport] {
        defer { reports.removeAll(keepingCapacity: true) }
        return reports
    }
}

/// The delivery-report callback: runs inside rd_kafka_poll/flush on the polling thread.
/// `opaque` is the client's `DeliveryReportSink`, unretained (see `RDKafkaClient.init`).
private func deliveryReportCallback(
    _ rk: OpaquePointer?, _ message: UnsafePointer<rd_kafka_message_t>?, _ opaque: UnsafeMutableRawPointer?
) {
    guard let message, let opaque else { return }
    let sink = Unmanaged<DeliveryReportSink>.fromOpaque(opaque).takeUnretainedValue()
    let m = message.pointee
    let failed = m.err != RD_KAFKA_RESP_ERR_NO_ERROR
    sink.append(
        RDKafkaClient.DeliveryReport(
            messageID: UInt(bitPattern: m._private),
            topic: m.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? "",
            partition: KafkaPartition(m.partition),
            offset: failed ? nil : KafkaOffset(m.offset),
            error: failed ? KafkaError(code: m.err) : nil))
}

extension KafkaMessage {
    /// Copies a librdkafka message (payload, key, headers) into Swift memory.
    init(copying pointer: UnsafeMutablePointer<rd_kafka_message_t>) {
        let m = pointer.pointee
        let value = m.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: m.len)) } ?? []
        let key = m.key.map { Array(UnsafeRawBufferPointer(start: $0, count: m.key_len)) }
        var headers: [KafkaHeader] = []
        var cHeaders: OpaquePointer? = nil
        if rd_kafka_message_headers(pointer, &cHeaders) == RD_KAFKA_RESP_ERR_NO_ERROR, let cHeaders {
            var index = 0
            var name: UnsafePointer<CChar>? = nil
            var bytes: UnsafeRawPointer? = nil
            var size = 0
            while rd_kafka_header_get_all(cHeaders, index, &name, &bytes, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
                headers.append(
                    KafkaHeader(
                        key: name.map { String(cString: $0) } ?? "",
                        value: bytes.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) }))
                index += 1
            }
        }
        var timestampType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let timestamp = rd_kafka_message_timestamp(pointer, &timestampType)
        self.init(
            topic: m.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? "",
            partition: KafkaPartition(m.partition),
            offset: KafkaOffset(m.offset),
            key: key,
            value: value,
            headers: headers,
            timestampMilliseconds: timestampType == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? nil : timestamp)
    }
}

/// Calls `body` with a pointer and count for optional bytes (`nil`, 0 when absent).
func withOptionalBytes<R>(_ bytes: [UInt8]?, _ body: (UnsafeRawPointer?, Int) -> R) -> R {
    guard let bytes else { return body(nil, 0) }
    return bytes.withUnsafeBytes { body($0.baseAddress, $0.count) }
}
