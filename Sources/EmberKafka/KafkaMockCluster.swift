import CRdKafka

/// librdkafka's in-process mock Kafka cluster, for fault-injection tests and local
/// experiments without a broker. Clients connect through `bootstrapServers`.
public final class KafkaMockCluster: @unchecked Sendable {
    /// The mock cluster lives inside a client handle; it must outlive `cluster`.
    private let host: RDKafkaClient
    private let cluster: OpaquePointer
    public let bootstrapServers: String

    public init(brokers: Int = 3) throws(KafkaError) {
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

    public func createTopic(_ name: String, partitions: Int, replicationFactor: Int = 1) throws(KafkaError) {
        let error = rd_kafka_mock_topic_create(cluster, name, Int32(partitions), Int32(replicationFactor))
        if error != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(code: error) }
    }
}
