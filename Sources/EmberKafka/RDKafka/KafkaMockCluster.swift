import CRdKafka

/// librdkafka's in-process mock Kafka cluster, for fault-injection tests and local
/// experiments without a broker. Clients connect through `bootstrapServers`.
package final class KafkaMockCluster: @unchecked Sendable {
    /// The mock cluster lives inside a client handle; it must outlive `cluster`.
    private let host: RDKafkaClient
    private let cluster: OpaquePointer
    package let bootstrapServers: String

    package init(brokers: Int = 3) throws(KafkaError) {
        host = try RDKafkaClient(kind: .producer, properties: ["log_level": "3"])
        guard let cluster = rd_kafka_mock_cluster_new(host.handle, Int32(brokers)) else {
            throw .client("cannot create a mock cluster with \(brokers) brokers")
        }
        self.cluster = cluster
        bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
    }

    deinit {
        rd_kafka_mock_cluster_destroy(cluster)
    }

    /// Kafka protocol request kinds whose answers can be failed.
    package enum RequestKind: Int16, Sendable {
        case produce = 0, fetch = 1, listOffsets = 2, metadata = 3, offsetCommit = 8, offsetFetch = 9
        case findCoordinator = 10, joinGroup = 11, heartbeat = 12, syncGroup = 14, initProducerID = 22
    }

    /// The next `errors.count` requests of `kind` (to any broker) are answered with these
    /// errors, in order; later requests succeed again.
    package func failNextRequests(_ kind: RequestKind, with errors: [KafkaErrorCode]) {
        var codes = errors.map { rd_kafka_resp_err_t(rawValue: $0.rawValue) }
        codes.withUnsafeMutableBufferPointer { buffer in
            rd_kafka_mock_push_request_errors_array(cluster, kind.rawValue, buffer.count, buffer.baseAddress)
        }
    }

    /// Broker ids run from 1 to the number of brokers.
    package func setBrokerDown(_ id: Int32) throws(KafkaError) {
        let error = rd_kafka_mock_broker_set_down(cluster, id)
        if error != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(code: error) }
    }

    package func setBrokerUp(_ id: Int32) throws(KafkaError) {
        let error = rd_kafka_mock_broker_set_up(cluster, id)
        if error != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(code: error) }
    }

    /// Moves a partition's leadership to a broker.
    package func setPartitionLeader(topic: String, partition: Int32, broker: Int32) throws(KafkaError) {
        let error = rd_kafka_mock_partition_set_leader(cluster, topic, partition, broker)
        if error != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(code: error) }
    }

    package func createTopic(_ name: String, partitions: Int, replicationFactor: Int = 1) throws(KafkaError) {
        let error = rd_kafka_mock_topic_create(cluster, name, Int32(partitions), Int32(replicationFactor))
        if error != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(code: error) }
    }
}
