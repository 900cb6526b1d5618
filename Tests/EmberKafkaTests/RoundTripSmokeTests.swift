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

    @Test("produce and consume one message through librdkafka's mock cluster", .timeLimit(.minutes(2)))
    func mockClusterRoundTrip() throws {
        let cluster = try KafkaMockCluster(brokers: 3)
        let topic = TestBroker.uniqueName("smoke-mock")
        try cluster.createTopic(topic, partitions: 2)
        try withExtendedLifetime(cluster) {
            try roundTrip(bootstrap: cluster.bootstrapServers, topic: topic, consumer: TestBroker.mockClusterConsumerConfiguration)
        }
    }

    @Test("produce and consume one message through tansu", .enabled(if: TestBroker.isAvailable, "set EMBER_TEST_BROKERS (Ops/test does)"), .timeLimit(.minutes(2)))
    func tansuRoundTrip() throws {
        try roundTrip(bootstrap: TestBroker.bootstrapServers!, topic: TestBroker.uniqueName("smoke-tansu"), consumer: TestBroker.consumerConfiguration)
    }

    /// Produces one keyed message with headers, waits for its delivery report, then
    /// reads it back with a new consumer group and compares every field.
    private func roundTrip(
        bootstrap: String, topic: String, consumer consumerConfiguration: (String, String, [String]) -> KafkaConsumerConfiguration
    ) throws {
        let producer = try KafkaProducer(configuration: TestBroker.producerConfiguration(bootstrap: bootstrap))
        let key = Array("item-42".utf8)
        let value = Array(#"{"item_id":"42"}"#.utf8)
        let headers = [KafkaHeader(key: "content-type", string: "application/json"), KafkaHeader(key: "empty", value: nil)]
        let results = try sendAll(producer, [KafkaProducerRecord(topic: topic, key: key, value: value, headers: headers)])
        let delivery = try results[0].get()
        #expect(delivery.topic == topic)
        try producer.close(timeout: .seconds(5))

        let consumer = try KafkaConsumer(configuration: consumerConfiguration(bootstrap, TestBroker.uniqueName("smoke"), [topic]))
        let events = try pollEvents(consumer, seconds: 60) { !$0.messages.isEmpty }
        let message = try #require(events.messages.first, "no message within 60 s; events: \(events), assignment: \(consumer.assignment)")
        #expect(message.topic == topic)
        #expect(message.partition == delivery.partition)
        #expect(message.offset == delivery.offset)
        #expect(message.key == key)
        #expect(message.value == value)
        #expect(message.headers == headers)
        #expect(message.timestampMilliseconds != nil)
        try consumer.close()
    }
}
