/// An error reported by librdkafka or by Ember's Kafka layer.
public struct KafkaError: Error, Sendable, Equatable, CustomStringConvertible {
    /// librdkafka's `rd_kafka_resp_err_t` value (negative values are client-side errors).
    public let code: Int32
    /// librdkafka's symbolic name, such as `_TIMED_OUT` or `UNKNOWN_TOPIC_OR_PART`.
    public let name: String
    public let message: String
    /// librdkafka's verdict on whether retrying the operation may succeed.
    public let isRetriable: Bool
    /// A fatal error leaves the client unusable (for example an idempotent producer's sequence gap).
    public let isFatal: Bool

    public var description: String { "\(name): \(message)" }

    /// The error code as a comparable value (`error.errorCode == .messageSizeTooLarge`).
    public var errorCode: KafkaErrorCode { KafkaErrorCode(rawValue: code) }
}

/// A Kafka protocol or librdkafka error code. Broker codes are positive (the Kafka
/// protocol's numbers), librdkafka's client-side codes negative.
/// The named codes live in `RDKafka/KafkaError+RDKafka.swift`.
public struct KafkaErrorCode: RawRepresentable, Hashable, Sendable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
}
