import Foundation
import Logging

/// What a topic must look like.
public struct KafkaTopicSpec: Sendable, Equatable {
    public var name: String
    public var partitions: Int
    public var replicationFactor: Int

    public init(name: String, partitions: Int, replicationFactor: Int = 1) {
        self.name = name
        self.partitions = partitions
        self.replicationFactor = replicationFactor
    }
}

/// Topic administration for start-up checks, the quickstart and tests.
public final class KafkaAdmin: @unchecked Sendable {
    private let client: RDKafkaClient
    private let logger: Logger

    /// `properties` are passed to librdkafka as they are (security settings, `client.id`).
    public init(bootstrapServers: String, properties: [String: String] = [:], logger: Logger = Logger(label: "ember.kafka.admin")) throws(KafkaError) {
        try requireNonEmpty(bootstrapServers, "bootstrapServers")
        var all = ["bootstrap.servers": bootstrapServers]
        all.merge(properties) { _, override in override }
        client = try RDKafkaClient(kind: .producer, properties: all, logger: logger)
        self.logger = logger
    }

    /// Partition counts of the cluster's topics.
    public func partitionCounts(timeout: Duration = .seconds(10)) throws(KafkaError) -> [String: Int] {
        try client.topicPartitionCounts(timeoutMilliseconds: timeout.timeoutMilliseconds)
    }

    /// Creates the topics that do not exist and waits until the cluster's metadata shows
    /// them. An existing topic with fewer partitions than asked is an error (Ember does
    /// not add partitions; that changes key placement and is an operator's decision).
    public func ensureTopics(_ topics: [KafkaTopicSpec], timeout: Duration = .seconds(30)) throws(KafkaError) {
        for topic in topics {
            try requireNonEmpty(topic.name, "topic name")
            if topic.partitions < 1 { throw .client("topic \(topic.name) needs at least one partition, got \(topic.partitions)") }
            if topic.replicationFactor < 1 { throw .client("topic \(topic.name) needs a replication factor of at least 1, got \(topic.replicationFactor)") }
        }
        let deadline = ContinuousClock.now.advanced(by: timeout)
        var existing = try partitionCounts(timeout: timeout)
        let missing = topics.filter { existing[$0.name] == nil }
        if !missing.isEmpty {
            let errors = try client.createTopics(
                missing.map { ($0.name, $0.partitions, $0.replicationFactor) }, timeoutMilliseconds: timeout.timeoutMilliseconds)
            for (name, error) in errors where error.errorCode != .topicAlreadyExists {
                throw .client("cannot create topic \(name): \(error)", code: error.errorCode)
            }
            logger.debug("Kafka topics created", metadata: ["kafka.topics": "\(missing.map(\.name))"])
        }
        while true {
            existing = try partitionCounts(timeout: timeout)
            if topics.allSatisfy({ existing[$0.name] != nil }) { break }
            if ContinuousClock.now >= deadline {
                let absent = topics.filter { existing[$0.name] == nil }.map(\.name)
                throw .client("topics \(absent) did not appear in the metadata within \(timeout)", code: .timedOut)
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
        for topic in topics {
            let count = existing[topic.name] ?? 0
            if count < topic.partitions {
                throw .client("topic \(topic.name) has \(count) partition(s), \(topic.partitions) required; add partitions with the cluster's tools", code: .invalidArgument)
            }
        }
    }
}
