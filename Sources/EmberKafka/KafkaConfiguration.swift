/// Settings of a group consumer. Every value has a documented default; anything else
/// librdkafka understands goes into `properties`, which is applied last and overrides.
public struct KafkaConsumerConfiguration: Sendable, Equatable {
    /// Comma-separated `host:port` list (librdkafka `bootstrap.servers`). Required.
    public var bootstrapServers: String
    /// Consumer group; workers with the same id share the partitions. Required.
    public var groupID: String
    /// Topics to subscribe to. Required.
    public var topics: [String]
    /// `client.id`. Default `ember`.
    public var clientID: String = "ember"
    /// Where a partition without a committed offset starts. Default `.earliest`, so a new
    /// group processes the backlog rather than silently skipping it.
    public var autoOffsetReset: AutoOffsetReset = .earliest
    /// `session.timeout.ms`. Default 45 s (librdkafka's).
    public var sessionTimeout: Duration = .seconds(45)
    /// `heartbeat.interval.ms`. Default 3 s (librdkafka's). Must be below `sessionTimeout`.
    public var heartbeatInterval: Duration = .seconds(3)
    /// `max.poll.interval.ms`: the longest gap between `poll` calls before the member is
    /// removed from the group. Default 5 min. Pausing does not stop the clock; keep polling.
    public var maxPollInterval: Duration = .seconds(300)
    /// `auto.commit.interval.ms`: how often stored (done) offsets are committed. Default 5 s.
    public var commitInterval: Duration = .seconds(5)
    /// Most messages one `poll` returns. Default 500.
    public var maxMessagesPerPoll: Int = 500
    /// Any librdkafka property (see librdkafka's CONFIGURATION.md), applied last.
    /// `enable.auto.offset.store` and `enable.auto.commit` are managed by Ember and rejected.
    public var properties: [String: String] = [:]

    public enum AutoOffsetReset: String, Sendable { case earliest, latest, error }

    public init(bootstrapServers: String, groupID: String, topics: [String]) {
        self.bootstrapServers = bootstrapServers
        self.groupID = groupID
        self.topics = topics
    }

    /// The librdkafka properties these settings stand for, validated.
    func librdkafkaProperties() throws(KafkaError) -> [String: String] {
        try requireNonEmpty(bootstrapServers, "bootstrapServers")
        try requireNonEmpty(groupID, "groupID")
        if topics.isEmpty || topics.contains(where: \.isEmpty) {
            throw .client("topics must name at least one topic, and no empty name")
        }
        let session = try milliseconds(sessionTimeout, "sessionTimeout")
        let heartbeat = try milliseconds(heartbeatInterval, "heartbeatInterval")
        if heartbeat >= session {
            throw .client("heartbeatInterval (\(heartbeat) ms) must be below sessionTimeout (\(session) ms)")
        }
        if maxMessagesPerPoll < 1 { throw .client("maxMessagesPerPoll must be at least 1, got \(maxMessagesPerPoll)") }
        for managed in ["enable.auto.offset.store", "enable.auto.commit"] where properties[managed] != nil {
            throw .client("\(managed) is managed by Ember (offsets are stored when work is marked done); remove it from properties")
        }
        var result: [String: String] = [
            "bootstrap.servers": bootstrapServers,
            "group.id": groupID,
            "client.id": clientID,
            "auto.offset.reset": autoOffsetReset.rawValue,
            "session.timeout.ms": String(session),
            "heartbeat.interval.ms": String(heartbeat),
            "max.poll.interval.ms": String(try milliseconds(maxPollInterval, "maxPollInterval")),
            "auto.commit.interval.ms": String(try milliseconds(commitInterval, "commitInterval")),
            "enable.auto.commit": "true",
            "enable.auto.offset.store": "false",
            "partition.assignment.strategy": "cooperative-sticky",
            "enable.partition.eof": "false",
        ]
        result.merge(properties) { _, override in override }
        return result
    }
}

/// Settings of the producer. Idempotence is always on (no duplicates or reordering
/// from retries); anything else librdkafka understands goes into `properties`.
public struct KafkaProducerConfiguration: Sendable, Equatable {
    /// Comma-separated `host:port` list. Required.
    public var bootstrapServers: String
    /// `client.id`. Default `ember`.
    public var clientID: String = "ember"
    /// `message.timeout.ms`: how long librdkafka retries a message before its delivery
    /// report fails with `_MSG_TIMED_OUT`. Default 2 min.
    public var deliveryTimeout: Duration = .seconds(120)
    /// `linger.ms`: how long to wait to fill a batch. Default 5 ms.
    public var linger: Duration = .milliseconds(5)
    /// `queue.buffering.max.messages`: messages waiting for a delivery report. Default 100 000.
    public var maxQueuedMessages: Int = 100_000
    /// How long `send` waits for room when the queue is full before it throws
    /// `queueFull`. Default 30 s.
    public var enqueueTimeout: Duration = .seconds(30)
    /// `compression.type`. Default `lz4`.
    public var compression: Compression = .lz4
    /// Any librdkafka property, applied last. `enable.idempotence=false` is rejected.
    public var properties: [String: String] = [:]

    public enum Compression: String, Sendable { case none, gzip, snappy, lz4, zstd }

    public init(bootstrapServers: String) { self.bootstrapServers = bootstrapServers }

    func librdkafkaProperties() throws(KafkaError) -> [String: String] {
        try requireNonEmpty(bootstrapServers, "bootstrapServers")
        if maxQueuedMessages < 1 { throw .client("maxQueuedMessages must be at least 1, got \(maxQueuedMessages)") }
        _ = try milliseconds(enqueueTimeout, "enqueueTimeout", allowZero: true)
        if let idempotence = properties["enable.idempotence"], idempotence != "true" {
            throw .client("enable.idempotence must stay true (at-least-once without duplicates from retries)")
        }
        var result: [String: String] = [
            "bootstrap.servers": bootstrapServers,
            "client.id": clientID,
            "enable.idempotence": "true",
            "message.timeout.ms": String(try milliseconds(deliveryTimeout, "deliveryTimeout")),
            "linger.ms": String(try milliseconds(linger, "linger", allowZero: true)),
            "queue.buffering.max.messages": String(maxQueuedMessages),
            "compression.type": compression.rawValue,
        ]
        result.merge(properties) { _, override in override }
        return result
    }
}

extension KafkaConsumerConfiguration {
    /// The librdkafka properties Ember will use, for the start-up log line; values of
    /// secret properties (`KafkaSecrets`) are replaced by `<redacted>`.
    public func effectiveProperties() throws(KafkaError) -> [String: String] {
        KafkaSecrets.redacting(try librdkafkaProperties())
    }
}

extension KafkaProducerConfiguration {
    /// The librdkafka properties Ember will use, secrets redacted (see the consumer's).
    public func effectiveProperties() throws(KafkaError) -> [String: String] {
        KafkaSecrets.redacting(try librdkafkaProperties())
    }
}

/// The one rule for librdkafka properties that hold a secret, used wherever properties
/// are shown (the start-up log, `effectiveProperties()`).
public enum KafkaSecrets {
    /// What a secret value is shown as.
    public static let redacted = "<redacted>"

    /// Properties of librdkafka's CONFIGURATION.md (2.8 to 2.12) whose value is a secret
    /// but whose name does not say so: the OAUTHBEARER config string (it may carry
    /// client secrets) and the key set through `rd_kafka_conf_set_ssl_cert()`.
    static let secretProperties: Set<String> = ["sasl.oauthbearer.config", "ssl_key"]

    /// Name parts that mark a secret: `sasl.password`, `ssl.key.password`,
    /// `ssl.keystore.password`, `sasl.oauthbearer.client.secret` (and its
    /// `client.credentials` alias), `sasl.oauthbearer.assertion.private.key.passphrase`,
    /// and every PEM string (`ssl.key.pem`, `sasl.oauthbearer.assertion.private.key.pem`,
    /// also certificates: a PEM blob is no use in a log line, and a key pasted into the
    /// wrong property must not leak). Paths (`ssl.key.location`) are not secrets.
    static let secretMarkers = ["password", "passphrase", "secret", ".pem"]

    /// Whether the property's value must not be shown. Also true for any value holding a
    /// PEM private key, whatever the property's name.
    public static func isSecret(_ name: String, value: String = "") -> Bool {
        let name = name.lowercased()
        return secretProperties.contains(name) || secretMarkers.contains { name.contains($0) } || value.contains("PRIVATE KEY")
    }

    /// The properties with every secret value replaced by `redacted`.
    public static func redacting(_ properties: [String: String]) -> [String: String] {
        properties.reduce(into: [:]) { result, property in
            result[property.key] = isSecret(property.key, value: property.value) ? redacted : property.value
        }
    }
}

func requireNonEmpty(_ value: String, _ name: String) throws(KafkaError) {
    if value.allSatisfy(\.isWhitespace) { throw .client("\(name) must not be empty") }
}

/// A positive duration in whole milliseconds, or an error naming the setting.
func milliseconds(_ duration: Duration, _ name: String, allowZero: Bool = false) throws(KafkaError) -> Int64 {
    let value = duration.wholeMilliseconds
    if value < 0 || (value == 0 && !allowZero) || value > Int64(Int32.max) {
        throw .client("\(name) must be \(allowZero ? "at least 0" : "positive") and below 24 days, got \(duration)")
    }
    return value
}

extension Duration {
    var wholeMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    /// Milliseconds for a librdkafka timeout argument, clamped to `0...Int32.max`.
    var timeoutMilliseconds: Int32 { Int32(clamping: max(0, wholeMilliseconds)) }
}
