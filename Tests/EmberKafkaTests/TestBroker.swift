import Foundation
import Testing
@testable import EmberKafka

/// Where the real broker (tansu) for integration tests listens. `Ops/test` starts one
/// and sets EMBER_TEST_BROKERS; without it the broker tests are skipped (Ops/test
/// fails a run that skipped anything).
enum TestBroker {
    static let bootstrapServers: String? = ProcessInfo.processInfo.environment["EMBER_TEST_BROKERS"]
    static var isAvailable: Bool { bootstrapServers != nil }

    /// A topic or group name no other test (or earlier run) uses.
    static func uniqueName(_ prefix: String) -> String {
        "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
    }

    /// Consumer settings for tests: tansu's group join takes about session.timeout.ms / 2.
    static func consumerConfiguration(bootstrap: String, group: String, topics: [String]) -> KafkaConsumerConfiguration {
        var configuration = KafkaConsumerConfiguration(bootstrapServers: bootstrap, groupID: group, topics: topics)
        configuration.sessionTimeout = .milliseconds(6000)
        configuration.heartbeatInterval = .milliseconds(1000)
        configuration.properties = ["log_level": "3", "topic.metadata.refresh.interval.ms": "1000"]
        return configuration
    }

    /// Consumer settings for librdkafka's mock cluster: as above, but with librdkafka's
    /// default metadata refresh (5 min). librdkafka 2.8 treats any metadata reply that
    /// arrives while the group leader waits for its own (to run the assignor) as the
    /// pre-join wait and rejoins, throwing the assignment away. The mock coordinator
    /// answers JoinGroup after exactly 3 s, then 5 s, so a 1 s periodic refresh started
    /// with the consumer lands in that window round after round: under load a consumer
    /// got no assignment within 60 s (CI, stop 23; reproduced in C with the refresh on,
    /// never with it off).
    static func mockClusterConsumerConfiguration(bootstrap: String, group: String, topics: [String]) -> KafkaConsumerConfiguration {
        var configuration = consumerConfiguration(bootstrap: bootstrap, group: group, topics: topics)
        configuration.properties["topic.metadata.refresh.interval.ms"] = nil
        return configuration
    }

    static func producerConfiguration(bootstrap: String) -> KafkaProducerConfiguration {
        var configuration = KafkaProducerConfiguration(bootstrapServers: bootstrap)
        configuration.deliveryTimeout = .seconds(30)
        configuration.properties = ["log_level": "3"]
        return configuration
    }
}

/// Sends every record and waits for all delivery reports; returns them in send order.
func sendAll(_ producer: KafkaProducer, _ records: [KafkaProducerRecord], timeout: Duration = .seconds(30)) throws -> [Result<KafkaDelivery, KafkaError>] {
    let results = Locked([Int: Result<KafkaDelivery, KafkaError>]())
    for (index, record) in records.enumerated() {
        try producer.send(record) { result in results.withLock { $0[index] = result } }
    }
    try producer.flush(timeout: timeout)
    return try results.withLock { all in
        try records.indices.map { index in try #require(all[index], "no delivery report for record \(index)") }
    }
}

/// Polls until `done` holds for the events gathered so far, or the deadline passes.
@discardableResult
func pollEvents(
    _ consumer: KafkaConsumer, seconds: Double, until done: ([KafkaConsumerEvent]) -> Bool
) throws -> [KafkaConsumerEvent] {
    let deadline = Date().addingTimeInterval(seconds)
    var events: [KafkaConsumerEvent] = []
    while Date() < deadline {
        events += try consumer.poll(timeout: .milliseconds(100))
        if done(events) { break }
    }
    return events
}

extension [KafkaConsumerEvent] {
    var messages: [KafkaMessage] {
        compactMap { if case .message(let message) = $0 { message } else { nil } }
    }
}

/// A partition list that reads well in expectations.
func partitions(_ topic: String, _ numbers: Int32...) -> Set<KafkaTopicPartition> {
    Set(numbers.map { KafkaTopicPartition(topic: topic, partition: KafkaPartition($0)) })
}
