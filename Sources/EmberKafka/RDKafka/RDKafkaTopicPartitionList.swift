import CRdKafka

/// One entry of an `rd_kafka_topic_partition_list_t`, in Swift values.
struct RDKafkaPartitionEntry {
    var topicPartition: KafkaTopicPartition
    /// librdkafka's offset field: an offset, a timestamp (offsetsForTimes) or a sentinel.
    var offset: Int64
    var error: rd_kafka_resp_err_t = RD_KAFKA_RESP_ERR_NO_ERROR
}

/// Converts between Swift arrays and librdkafka's topic-partition lists.
enum RDKafkaTopicPartitionList {
    typealias Pointer = UnsafeMutablePointer<rd_kafka_topic_partition_list_t>

    /// A new list the caller must destroy with `rd_kafka_topic_partition_list_destroy`.
    static func make(_ entries: [RDKafkaPartitionEntry]) -> Pointer {
        let list = rd_kafka_topic_partition_list_new(Int32(entries.count))!
        for entry in entries {
            let element = rd_kafka_topic_partition_list_add(
                list, entry.topicPartition.topic, entry.topicPartition.partition.rawValue)
            element?.pointee.offset = entry.offset
        }
        return list
    }

    static func make(_ partitions: [KafkaTopicPartition], offset: Int64 = ember_rd_kafka_offset_invalid()) -> Pointer {
        make(partitions.map { RDKafkaPartitionEntry(topicPartition: $0, offset: offset) })
    }

    /// Calls `body` with a temporary list.
    static func with<R>(_ entries: [RDKafkaPartitionEntry], _ body: (Pointer) throws(KafkaError) -> R) throws(KafkaError) -> R {
        let list = make(entries)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        return try body(list)
    }

    static func read(_ list: Pointer) -> [RDKafkaPartitionEntry] {
        let count = Int(list.pointee.cnt)
        guard count > 0, let elements = list.pointee.elems else { return [] }
        return (0..<count).map { index in
            let e = elements[index]
            return RDKafkaPartitionEntry(
                topicPartition: KafkaTopicPartition(topic: String(cString: e.topic), partition: KafkaPartition(e.partition)),
                offset: e.offset, error: e.err)
        }
    }
}
