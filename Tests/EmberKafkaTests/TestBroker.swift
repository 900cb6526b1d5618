import Foundation
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
    static func consumerProperties(bootstrap: String, group: String) -> [String: String] {
        [
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": "6000",
            "heartbeat.interval.ms": "1000",
            "log_level": "3",
        ]
    }
}

/// Polls until a message arrives or the deadline passes.
func pollMessage(_ consumer: RDKafkaClient, seconds: Double) throws -> KafkaMessage? {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if let message = try consumer.consumerPoll(timeoutMilliseconds: 200) { return message }
    }
    return nil
}
