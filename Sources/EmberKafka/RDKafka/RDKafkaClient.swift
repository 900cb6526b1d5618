import CRdKafka
import Logging

/// Owns one `rd_kafka_t` handle. Every librdkafka call of the package goes through
/// this folder; callers above see Swift values only.
///
/// librdkafka's API is thread-safe, but the poll functions run callbacks on the calling
/// thread: a consumer is polled from one thread at a time, and a producer's delivery
/// reports are served by whichever thread calls `poll`/`flush`.
final class RDKafkaClient: @unchecked Sendable {
    enum Kind { case producer, consumer }

    let handle: OpaquePointer
    let kind: Kind
    let callbacks: RDKafkaCallbacks
    /// The last topic name read from a message, keyed by librdkafka's topic handle,
    /// so consuming does not build a new String per message. Poll thread only.
    private var topicNameCache: (handle: OpaquePointer, name: String)?

    init(kind: Kind, properties: [String: String], logger: Logger = Logger(label: "ember.kafka")) throws(KafkaError) {
        let conf = try RDKafkaConfig.make(properties)
        let callbacks = RDKafkaCallbacks(logger: logger)
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(callbacks).toOpaque())
        rd_kafka_conf_set_log_cb(conf, rdKafkaLogCallback)
        rd_kafka_conf_set_error_cb(conf, rdKafkaErrorCallback)
        switch kind {
        case .producer: rd_kafka_conf_set_dr_msg_cb(conf, rdKafkaDeliveryCallback)
        case .consumer: rd_kafka_conf_set_rebalance_cb(conf, rdKafkaRebalanceCallback)
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
        self.callbacks = callbacks
        if kind == .consumer {
            // Route the main event queue (errors, logs' side events) into consumer_poll.
            rd_kafka_poll_set_consumer(handle)
        }
    }

    deinit {
        rd_kafka_destroy(handle)
    }

    /// The fatal error that made this client unusable, if any.
    static func fatalError(of rk: OpaquePointer) -> KafkaError? {
        var buffer = [CChar](repeating: 0, count: 512)
        let code = rd_kafka_fatal_error(rk, &buffer, buffer.count)
        guard code != RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        return KafkaError(code: code, message: "fatal: " + String(cBuffer: buffer), isFatal: true)
    }

    var fatalError: KafkaError? { Self.fatalError(of: handle) }

    /// Raises a fatal error the way a broker-caused one would (librdkafka's test hook).
    func triggerFatalErrorForTesting(reason: String) {
        _ = rd_kafka_test_fatal_error(handle, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, reason)
    }

    /// Serves callbacks (delivery reports, errors) for up to `timeoutMilliseconds`.
    @discardableResult
    func poll(timeoutMilliseconds: Int32) -> Int32 {
        rd_kafka_poll(handle, timeoutMilliseconds)
    }

    // MARK: producing

    /// Enqueues one message (copied). On success (`nil`) librdkafka owns `delivery` until
    /// its report; on failure the caller still owns it.
    func produce(_ record: KafkaProducerRecord, delivery: UnsafeMutableRawPointer?) -> KafkaError? {
        var cHeaders: OpaquePointer? = nil
        if !record.headers.isEmpty {
            cHeaders = rd_kafka_headers_new(record.headers.count)
            for header in record.headers {
                if let value = header.value {
                    _ = value.withUnsafeBytes { bytes in
                        rd_kafka_header_add(cHeaders, header.key, -1, bytes.baseAddress, bytes.count)
                    }
                } else {
                    rd_kafka_header_add(cHeaders, header.key, -1, nil, 0)
                }
            }
        }
        let error = record.value.withUnsafeBytes { valueBytes in
            withOptionalBytes(record.key) { keyPointer, keyCount in
                ember_rd_kafka_produce(
                    handle, record.topic, record.partition?.rawValue ?? ember_rd_kafka_partition_ua(),
                    valueBytes.baseAddress, valueBytes.count, keyPointer, keyCount,
                    cHeaders, record.timestampMilliseconds ?? 0, delivery)
            }
        }
        if error != RD_KAFKA_RESP_ERR_NO_ERROR, let cHeaders {
            // librdkafka takes the headers only when the message was accepted.
            rd_kafka_headers_destroy(cHeaders)
        }
        switch error {
        case RD_KAFKA_RESP_ERR_NO_ERROR: return nil
        case RD_KAFKA_RESP_ERR__FATAL: return fatalError ?? KafkaError(code: error, isFatal: true)
        default:
            return KafkaError(
                code: error, message: "cannot enqueue a message for \(record.topic): \(String(cString: rd_kafka_err2str(error)))",
                isRetriable: error == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        }
    }

    /// Waits until every enqueued message is delivered or failed, up to the timeout.
    /// Returns false when messages were still outstanding at the deadline.
    func flush(timeoutMilliseconds: Int32) -> Bool {
        rd_kafka_flush(handle, timeoutMilliseconds) == RD_KAFKA_RESP_ERR_NO_ERROR
    }

    /// Fails every queued and in-flight message with `_PURGE_QUEUE`/`_PURGE_INFLIGHT`;
    /// their delivery reports are served by the next `poll`.
    func purgeAll() {
        _ = rd_kafka_purge(handle, 0x1 | 0x2)  // RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT
    }

    /// Messages (and requests) still waiting for a delivery report.
    var outstandingCount: Int32 { rd_kafka_outq_len(handle) }

    // MARK: consuming

    enum PollResult {
        case message(KafkaMessage)
        case partitionEOF(KafkaTopicPartition, next: KafkaOffset)
        case error(KafkaError)
    }

    func subscribe(topics: [String]) throws(KafkaError) {
        let list = RDKafkaTopicPartitionList.make(
            topics.map { KafkaTopicPartition(topic: $0, partition: KafkaPartition(ember_rd_kafka_partition_ua())) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let error = rd_kafka_subscribe(handle, list)
        if error != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(code: error) }
    }

    /// The next message or event; `nil` when nothing arrived within the timeout.
    /// Rebalance callbacks run inside this call.
    func consumerPoll(timeoutMilliseconds: Int32) -> PollResult? {
        guard let pointer = rd_kafka_consumer_poll(handle, timeoutMilliseconds) else { return nil }
        defer { rd_kafka_message_destroy(pointer) }
        let m = pointer.pointee
        switch m.err {
        case RD_KAFKA_RESP_ERR_NO_ERROR:
            return .message(KafkaMessage(copying: pointer, topic: topicName(m.rkt)))
        case RD_KAFKA_RESP_ERR__PARTITION_EOF:
            return .partitionEOF(
                KafkaTopicPartition(topic: topicName(m.rkt), partition: KafkaPartition(m.partition)),
                next: KafkaOffset(m.offset))
        case RD_KAFKA_RESP_ERR__FATAL:
            return .error(fatalError ?? KafkaError(code: m.err, isFatal: true))
        default:
            let detail = String(cString: rd_kafka_message_errstr(pointer))
            return .error(KafkaError(code: m.err, message: detail))
        }
    }

    private func topicName(_ rkt: OpaquePointer?) -> String {
        guard let rkt else { return "" }
        if let cached = topicNameCache, cached.handle == rkt { return cached.name }
        let name = String(cString: rd_kafka_topic_name(rkt))
        topicNameCache = (rkt, name)
        return name
    }

    /// The partitions currently assigned to this consumer.
    func assignment() -> [KafkaTopicPartition] {
        var list: RDKafkaTopicPartitionList.Pointer? = nil
        guard rd_kafka_assignment(handle, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list else { return [] }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        return RDKafkaTopicPartitionList.read(list).map(\.topicPartition)
    }

    /// Manual assignment with start offsets (replay; no group).
    func assign(_ entries: [RDKafkaPartitionEntry]) throws(KafkaError) {
        try RDKafkaTopicPartitionList.with(entries) { (list) throws(KafkaError) in
            let error = rd_kafka_assign(handle, list)
            if error != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(code: error) }
        }
    }

    func pause(_ partitions: [KafkaTopicPartition]) {
        guard !partitions.isEmpty else { return }
        let list = RDKafkaTopicPartitionList.make(partitions)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        _ = rd_kafka_pause_partitions(handle, list)
    }

    func resume(_ partitions: [KafkaTopicPartition]) {
        guard !partitions.isEmpty else { return }
        let list = RDKafkaTopicPartitionList.make(partitions)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        _ = rd_kafka_resume_partitions(handle, list)
    }

    /// Stores offsets (the next offset to consume) for the next commit. Entries for
    /// partitions no longer assigned fail with `_STATE` and are returned.
    @discardableResult
    func storeOffsets(_ entries: [RDKafkaPartitionEntry]) -> [RDKafkaPartitionEntry] {
        guard !entries.isEmpty else { return [] }
        let list = RDKafkaTopicPartitionList.make(entries)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        _ = rd_kafka_offsets_store(handle, list)
        return RDKafkaTopicPartitionList.read(list).filter { $0.error != RD_KAFKA_RESP_ERR_NO_ERROR }
    }

    /// Commits synchronously: the stored offsets when `entries` is nil, else those offsets.
    func commit(_ entries: [RDKafkaPartitionEntry]? = nil) throws(KafkaError) {
        let error: rd_kafka_resp_err_t
        if let entries {
            guard !entries.isEmpty else { return }
            let list = RDKafkaTopicPartitionList.make(entries)
            defer { rd_kafka_topic_partition_list_destroy(list) }
            error = rd_kafka_commit(handle, list, 0)
        } else {
            error = rd_kafka_commit(handle, nil, 0)
        }
        if error != RD_KAFKA_RESP_ERR_NO_ERROR && error != RD_KAFKA_RESP_ERR__NO_OFFSET {
            throw KafkaError(code: error)
        }
    }

    /// The group's committed offsets, asked of the coordinator. `nil` for none committed.
    func committed(_ partitions: [KafkaTopicPartition], timeoutMilliseconds: Int32) throws(KafkaError) -> [KafkaTopicPartition: KafkaOffset?] {
        let list = RDKafkaTopicPartitionList.make(partitions)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let error = rd_kafka_committed(handle, list, timeoutMilliseconds)
        if error != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(code: error) }
        var result: [KafkaTopicPartition: KafkaOffset?] = [:]
        for entry in RDKafkaTopicPartitionList.read(list) {
            result[entry.topicPartition] = entry.offset >= 0 ? KafkaOffset(entry.offset) : nil
        }
        return result
    }

    /// The next offset the consumer will fetch per partition (`nil` when unknown yet).
    func positions(_ partitions: [KafkaTopicPartition]) -> [KafkaTopicPartition: KafkaOffset?] {
        guard !partitions.isEmpty else { return [:] }
        let list = RDKafkaTopicPartitionList.make(partitions)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        _ = rd_kafka_position(handle, list)
        var result: [KafkaTopicPartition: KafkaOffset?] = [:]
        for entry in RDKafkaTopicPartitionList.read(list) {
            result[entry.topicPartition] = entry.offset >= 0 ? KafkaOffset(entry.offset) : nil
        }
        return result
    }

    /// Low and high watermarks from the last Fetch response (no request is sent).
    func cachedWatermarks(_ partition: KafkaTopicPartition) -> (low: Int64, high: Int64)? {
        var low: Int64 = -1
        var high: Int64 = -1
        let error = rd_kafka_get_watermark_offsets(handle, partition.topic, partition.partition.rawValue, &low, &high)
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR, high >= 0 else { return nil }
        return (low, high)
    }

    /// Low and high watermarks asked of the partition leader (ListOffsets).
    func queryWatermarks(_ partition: KafkaTopicPartition, timeoutMilliseconds: Int32) throws(KafkaError) -> (low: Int64, high: Int64) {
        var low: Int64 = -1
        var high: Int64 = -1
        let error = rd_kafka_query_watermark_offsets(
            handle, partition.topic, partition.partition.rawValue, &low, &high, timeoutMilliseconds)
        if error != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(code: error, message: "watermarks of \(partition): \(String(cString: rd_kafka_err2str(error)))")
        }
        return (low, high)
    }

    /// For each partition, the earliest offset whose timestamp is at or after
    /// `timestampMilliseconds`; `nil` when no such message exists (yet).
    func offsetsForTimes(_ partitions: [KafkaTopicPartition], timestampMilliseconds: Int64, timeoutMilliseconds: Int32) throws(KafkaError) -> [KafkaTopicPartition: KafkaOffset?] {
        let list = RDKafkaTopicPartitionList.make(partitions, offset: timestampMilliseconds)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let error = rd_kafka_offsets_for_times(handle, list, timeoutMilliseconds)
        if error != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(code: error, message: "offsets for time \(timestampMilliseconds): \(String(cString: rd_kafka_err2str(error)))")
        }
        var result: [KafkaTopicPartition: KafkaOffset?] = [:]
        for entry in RDKafkaTopicPartitionList.read(list) {
            if entry.error != RD_KAFKA_RESP_ERR_NO_ERROR {
                throw KafkaError(code: entry.error, message: "offsets for time of \(entry.topicPartition): \(String(cString: rd_kafka_err2str(entry.error)))")
            }
            result[entry.topicPartition] = entry.offset >= 0 ? KafkaOffset(entry.offset) : nil
        }
        return result
    }

    /// Leaves the consumer group and stops fetching (rebalance callbacks run inside).
    func closeConsumer() throws(KafkaError) {
        let error = rd_kafka_consumer_close(handle)
        if error != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(code: error) }
    }

    /// The group member id, or nil before the consumer has joined its group.
    func groupMemberID() -> String? {
        guard let id = rd_kafka_memberid(handle) else { return nil }
        defer { rd_kafka_mem_free(handle, id) }
        let text = String(cString: id)
        return text.isEmpty ? nil : text
    }

    // MARK: metadata and admin

    /// Partition counts of every topic in the cluster (one Metadata request).
    func topicPartitionCounts(timeoutMilliseconds: Int32) throws(KafkaError) -> [String: Int] {
        var metadata: UnsafePointer<rd_kafka_metadata>? = nil
        let error = rd_kafka_metadata(handle, 1, nil, &metadata, timeoutMilliseconds)
        if error != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(code: error, message: "metadata: \(String(cString: rd_kafka_err2str(error)))") }
        guard let metadata else { return [:] }
        defer { rd_kafka_metadata_destroy(metadata) }
        var counts: [String: Int] = [:]
        let topics = metadata.pointee.topics
        for index in 0..<Int(metadata.pointee.topic_cnt) {
            guard let topic = topics?[index], topic.err == RD_KAFKA_RESP_ERR_NO_ERROR else { continue }
            counts[String(cString: topic.topic)] = Int(topic.partition_cnt)
        }
        return counts
    }

    /// Creates topics; returns per-topic errors (`TOPIC_ALREADY_EXISTS` included).
    func createTopics(_ topics: [(name: String, partitions: Int, replicationFactor: Int)], timeoutMilliseconds: Int32) throws(KafkaError) -> [String: KafkaError] {
        var newTopics: [OpaquePointer?] = []
        defer { for topic in newTopics { rd_kafka_NewTopic_destroy(topic) } }
        for topic in topics {
            var errorBuffer = [CChar](repeating: 0, count: 512)
            guard let newTopic = rd_kafka_NewTopic_new(
                topic.name, Int32(topic.partitions), Int32(topic.replicationFactor), &errorBuffer, errorBuffer.count)
            else { throw .client("invalid topic \(topic.name): \(String(cBuffer: errorBuffer))") }
            newTopics.append(newTopic)
        }
        let queue = rd_kafka_queue_new(handle)
        defer { rd_kafka_queue_destroy(queue) }
        let options = rd_kafka_AdminOptions_new(handle, RD_KAFKA_ADMIN_OP_CREATETOPICS)
        defer { rd_kafka_AdminOptions_destroy(options) }
        var errorBuffer = [CChar](repeating: 0, count: 512)
        _ = rd_kafka_AdminOptions_set_operation_timeout(options, timeoutMilliseconds, &errorBuffer, errorBuffer.count)
        _ = rd_kafka_AdminOptions_set_request_timeout(options, timeoutMilliseconds, &errorBuffer, errorBuffer.count)
        newTopics.withUnsafeMutableBufferPointer { buffer in
            rd_kafka_CreateTopics(handle, buffer.baseAddress, buffer.count, options, queue)
        }
        guard let event = rd_kafka_queue_poll(queue, timeoutMilliseconds + 1000) else {
            throw KafkaError(code: RD_KAFKA_RESP_ERR__TIMED_OUT, message: "CreateTopics got no answer")
        }
        defer { rd_kafka_event_destroy(event) }
        let eventError = rd_kafka_event_error(event)
        if eventError != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(code: eventError, message: "CreateTopics: \(String(cString: rd_kafka_event_error_string(event)))")
        }
        guard let result = rd_kafka_event_CreateTopics_result(event) else { return [:] }
        var count = 0
        guard let results = rd_kafka_CreateTopics_result_topics(result, &count) else { return [:] }
        var errors: [String: KafkaError] = [:]
        for index in 0..<count {
            guard let topicResult = results[index] else { continue }
            let code = rd_kafka_topic_result_error(topicResult)
            if code != RD_KAFKA_RESP_ERR_NO_ERROR {
                let name = String(cString: rd_kafka_topic_result_name(topicResult))
                let message = rd_kafka_topic_result_error_string(topicResult).map { String(cString: $0) }
                errors[name] = KafkaError(code: code, message: message)
            }
        }
        return errors
    }
}

extension KafkaMessage {
    /// Copies a librdkafka message (payload, key, headers) into Swift memory.
    init(copying pointer: UnsafeMutablePointer<rd_kafka_message_t>, topic: String) {
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
            topic: topic,
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
