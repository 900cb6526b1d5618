import CRdKafka

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

    init(code: rd_kafka_resp_err_t, message: String? = nil, isRetriable: Bool = false, isFatal: Bool = false) {
        self.code = code.rawValue
        self.name = String(cString: rd_kafka_err2name(code))
        self.message = message ?? String(cString: rd_kafka_err2str(code))
        self.isRetriable = isRetriable
        self.isFatal = isFatal
    }

    /// Takes ownership of an `rd_kafka_error_t` and destroys it.
    init(consuming error: OpaquePointer) {
        defer { rd_kafka_error_destroy(error) }
        self.init(
            code: rd_kafka_error_code(error),
            message: String(cString: rd_kafka_error_string(error)),
            isRetriable: rd_kafka_error_is_retriable(error) != 0,
            isFatal: rd_kafka_error_is_fatal(error) != 0)
    }

    /// An error detected by Ember before or around a librdkafka call.
    static func client(_ message: String, code: rd_kafka_resp_err_t = RD_KAFKA_RESP_ERR__INVALID_ARG) -> KafkaError {
        KafkaError(code: code, message: message)
    }

    static let timedOut = KafkaError(code: RD_KAFKA_RESP_ERR__TIMED_OUT)
}
