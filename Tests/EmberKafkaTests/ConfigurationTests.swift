import Testing
@testable import EmberKafka

@Suite("Kafka configuration")
struct ConfigurationTests {
    let consumer = KafkaConsumerConfiguration(bootstrapServers: "127.0.0.1:9", groupID: "g", topics: ["t"])

    @Test("consumer defaults turn into the at-least-once librdkafka settings")
    func consumerDefaults() throws {
        let properties = try consumer.librdkafkaProperties()
        #expect(properties["enable.auto.offset.store"] == "false")
        #expect(properties["enable.auto.commit"] == "true")
        #expect(properties["partition.assignment.strategy"] == "cooperative-sticky")
        #expect(properties["auto.offset.reset"] == "earliest")
        #expect(properties["session.timeout.ms"] == "45000")
        #expect(properties["heartbeat.interval.ms"] == "3000")
        #expect(properties["auto.commit.interval.ms"] == "5000")
    }

    @Test("pass-through properties override, managed ones are refused with their name")
    func passThrough() throws {
        var configuration = consumer
        configuration.properties = ["fetch.max.bytes": "1048576", "session.timeout.ms": "10000"]
        let properties = try configuration.librdkafkaProperties()
        #expect(properties["fetch.max.bytes"] == "1048576")
        #expect(properties["session.timeout.ms"] == "10000")

        configuration.properties = ["enable.auto.offset.store": "true"]
        let error = #expect(throws: KafkaError.self) { try configuration.librdkafkaProperties() }
        #expect(error?.message.contains("enable.auto.offset.store") == true)
    }

    @Test("effective properties for the start-up log redact credentials")
    func redaction() throws {
        var configuration = consumer
        configuration.properties = ["sasl.password": "hunter2", "ssl.key.password": "k", "sasl.username": "ember"]
        let properties = try configuration.effectiveProperties()
        #expect(properties["sasl.password"] == "<redacted>")
        #expect(properties["ssl.key.password"] == "<redacted>")
        #expect(properties["sasl.username"] == "ember")
        #expect(properties["group.id"] == "g")
    }

    /// Every librdkafka property that holds a secret (CONFIGURATION.md, librdkafka 2.8–2.12),
    /// including aliases and the PEM strings.
    static let secretProperties = [
        "sasl.password", "sasl.oauthbearer.config", "sasl.oauthbearer.client.secret",
        "sasl.oauthbearer.client.credentials.client.secret", "sasl.oauthbearer.assertion.private.key.passphrase",
        "sasl.oauthbearer.assertion.private.key.pem", "ssl.key.password", "ssl.key.pem", "ssl_key",
        "ssl.keystore.password", "ssl.certificate.pem", "SSL.Key.PEM",
    ]

    @Test("every librdkafka property that holds a secret is redacted", arguments: secretProperties)
    func redactsEverySecret(name: String) throws {
        var configuration = consumer
        configuration.properties = [name: "s3cr3t", "sasl.username": "ember", "ssl.key.location": "/etc/ember/key.pem"]
        let properties = try configuration.effectiveProperties()
        #expect(properties[name] == "<redacted>")
        #expect(properties["sasl.username"] == "ember")
        #expect(properties["ssl.key.location"] == "/etc/ember/key.pem", "a path is not a secret")
    }

    @Test("invalid consumer settings name the setting")
    func invalidConsumer() {
        var configuration = consumer
        configuration.heartbeatInterval = .seconds(50)
        var error = #expect(throws: KafkaError.self) { try configuration.librdkafkaProperties() }
        #expect(error?.message.contains("heartbeatInterval") == true)

        configuration = consumer
        configuration.groupID = " "
        error = #expect(throws: KafkaError.self) { try configuration.librdkafkaProperties() }
        #expect(error?.message.contains("groupID") == true)

        configuration = consumer
        configuration.topics = []
        #expect(throws: KafkaError.self) { try configuration.librdkafkaProperties() }

        configuration = consumer
        configuration.sessionTimeout = .milliseconds(-5)
        error = #expect(throws: KafkaError.self) { try configuration.librdkafkaProperties() }
        #expect(error?.message.contains("sessionTimeout") == true)
    }

    @Test("an unknown or ill-typed librdkafka property fails at creation with librdkafka's reason")
    func librdkafkaRejects() {
        var configuration = consumer
        configuration.properties = ["fetch.max.bytes": "lots"]
        let error = #expect(throws: KafkaError.self) { try KafkaConsumer(configuration: configuration) }
        #expect(error?.message.contains("fetch.max.bytes") == true)
    }

    @Test("the producer is always idempotent")
    func producer() throws {
        var configuration = KafkaProducerConfiguration(bootstrapServers: "127.0.0.1:9")
        configuration.properties = ["linger.ms": "20"]
        let properties = try configuration.librdkafkaProperties()
        #expect(properties["enable.idempotence"] == "true")
        #expect(properties["linger.ms"] == "20")
        #expect(properties["message.timeout.ms"] == "120000")

        configuration.properties = ["enable.idempotence": "false"]
        let error = #expect(throws: KafkaError.self) { try configuration.librdkafkaProperties() }
        #expect(error?.message.contains("enable.idempotence") == true)

        configuration = KafkaProducerConfiguration(bootstrapServers: "")
        #expect(throws: KafkaError.self) { try KafkaProducer(configuration: configuration) }
    }

    @Test("replay offsets parse from PARTITION:OFFSET lists")
    func replayOffsets() throws {
        let offsets = try KafkaReplayConfiguration.parseOffsets("0:120, 3:77")
        #expect(offsets == [KafkaPartition(0): KafkaOffset(120), KafkaPartition(3): KafkaOffset(77)])
        for bad in ["", "0", "0:x", "-1:3", "0:1,0:2", "0:1,"] {
            #expect(throws: KafkaError.self, "\(bad)") { try KafkaReplayConfiguration.parseOffsets(bad) }
        }
    }

    @Test("dead-letter records keep key, value and headers and add the six ember headers")
    func deadLetter() {
        let message = KafkaMessage(
            topic: "video.uploaded", partition: KafkaPartition(3), offset: KafkaOffset(12345),
            key: Array("k".utf8), value: [0xFF, 0x00, 0x7B],
            headers: [KafkaHeader(key: "trace", string: "abc"), KafkaHeader(key: "ember-attempts", string: "9")])
        let record = KafkaDeadLetter.record(
            for: message, topic: "video.uploaded.dlq", errorClass: "media_invalid",
            errorMessage: String(repeating: "é", count: 2000), attempts: 3)
        #expect(record.topic == "video.uploaded.dlq")
        #expect(record.key == message.key)
        #expect(record.value == message.value)
        let names = record.headers.map(\.key)
        #expect(names == ["trace", "ember-error-class", "ember-error-message", "ember-source-topic", "ember-source-partition", "ember-source-offset", "ember-attempts"])
        func header(_ name: String) -> String? {
            record.headers.first { $0.key == name }?.value.map { String(decoding: $0, as: UTF8.self) }
        }
        #expect(header("ember-error-class") == "media_invalid")
        #expect(header("ember-source-topic") == "video.uploaded")
        #expect(header("ember-source-partition") == "3")
        #expect(header("ember-source-offset") == "12345")
        #expect(header("ember-attempts") == "3")
        let errorMessage = try! #require(record.headers.first { $0.key == "ember-error-message" }?.value)
        #expect(errorMessage.count <= KafkaDeadLetter.maxErrorMessageBytes)
        #expect(String(validating: errorMessage, as: UTF8.self) != nil)
    }
}
