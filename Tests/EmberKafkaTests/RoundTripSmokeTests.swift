import Foundation
import Testing
@testable import EmberKafka

@Suite("librdkafka binding")
struct RoundTripSmokeTests {
    @Test("librdkafka is at least 2.2")
    func linkedVersion() {
        #expect(Librdkafka.isSupported, "linked librdkafka \(Librdkafka.version); Ops/setup builds 2.8.0")
    }

    @Test("an invalid property is rejected with librdkafka's reason")
    func invalidProperty() {
        let error = #expect(throws: KafkaError.self) {
            try RDKafkaClient(kind: .producer, properties: ["no.such.property": "1"])
        }
        #expect(error?.message.contains("no.such.property") == true)
    }

    @Test("produce and consume one message through librdkafka's mock cluster")
    func mockClusterRoundTrip() throws {
        let cluster = try KafkaMockCluster(brokers: 3)
        let topic = TestBroker.uniqueName("smoke-mock")
        try cluster.createTopic(topic, partitions: 2)
        try roundTrip(bootstrap: cluster.bootstrapServers, topic: topic)
    }

    @Test("produce and consume one message through tansu", .enabled(if: TestBroker.isAvailable, "set EMBER_TEST_BROKERS (Ops/test does)"))
    func tansuRoundTrip() throws {
        try roundTrip(bootstrap: TestBroker.bootstrapServers!, topic: TestBroker.uniqueName("smoke-tansu"))
    }

    /// Produces one keyed message with headers, waits for its delivery report, then
    /// reads it back with a new consumer group and compares every field.
    private func roundTrip(bootstrap: String, topic: String) throws {
        let producer = try RDKafkaClient(kind: .producer, properties: [
            "bootstrap.servers": bootstrap, "enable.idempotence": "true", "log_level": "3",
        ])
        let key = Array("item-42".utf8)
        let value = Array(#"{"item_id":"42"}"#.utf8)
        let headers = [KafkaHeader(key: "content-type", string: "application/json"), KafkaHeader(key: "empty", value: nil)]
        try producer.produce(topic: topic, key: key, value: value, headers: headers, messageID: 7)
        try producer.flush(timeoutMilliseconds: 15_000)
        let reports = producer.takeDeliveryReports()
        #expect(reports.count == 1)
        let report = try #require(reports.first)
        #expect(report.error == nil, "delivery failed: \(String(describing: report.error))")
        #expect(report.messageID == 7)
        #expect(report.topic == topic)
        let deliveredOffset = try #require(report.offset)

        let consumer = try RDKafkaClient(
            kind: .consumer,
            properties: TestBroker.consumerProperties(bootstrap: bootstrap, group: TestBroker.uniqueName("smoke")))
        try consumer.subscribe(topics: [topic])
        let message = try #require(try pollMessage(consumer, seconds: 30), "no message within 30 s")
        #expect(message.topic == topic)
        #expect(message.partition == report.partition)
        #expect(message.offset == deliveredOffset)
        #expect(message.key == key)
        #expect(message.value == value)
        #expect(message.headers == headers)
        #expect(message.timestampMilliseconds != nil)
        try consumer.closeConsumer()
    }
}
