import CRdKafka

// KafkaError and KafkaErrorCode in terms of librdkafka's codes.
extension KafkaError {
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

    static func client(_ message: String, code: KafkaErrorCode) -> KafkaError {
        KafkaError(code: rd_kafka_resp_err_t(rawValue: code.rawValue), message: message)
    }

    static let timedOut = KafkaError(code: RD_KAFKA_RESP_ERR__TIMED_OUT)

    /// Ember's own errors about a client that was closed or failed before the call.
    static func closed(_ what: String) -> KafkaError {
        .client("\(what) is closed", code: RD_KAFKA_RESP_ERR__STATE)
    }
}

extension KafkaErrorCode: CustomStringConvertible {
    public var description: String { String(cString: rd_kafka_err2name(rd_kafka_resp_err_t(rawValue: rawValue))) }

    // Broker errors used by Ember and its fault-injection tests.
    public static let notLeaderForPartition = Self(rawValue: RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION.rawValue)
    public static let requestTimedOut = Self(rawValue: RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT.rawValue)
    public static let messageSizeTooLarge = Self(rawValue: RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE.rawValue)
    public static let notEnoughReplicas = Self(rawValue: RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS.rawValue)
    public static let topicAuthorizationFailed = Self(rawValue: RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED.rawValue)
    public static let invalidRecord = Self(rawValue: RD_KAFKA_RESP_ERR_INVALID_RECORD.rawValue)
    public static let topicAlreadyExists = Self(rawValue: RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS.rawValue)
    // Client-side errors.
    public static let timedOut = Self(rawValue: RD_KAFKA_RESP_ERR__TIMED_OUT.rawValue)
    public static let invalidArgument = Self(rawValue: RD_KAFKA_RESP_ERR__INVALID_ARG.rawValue)
    public static let state = Self(rawValue: RD_KAFKA_RESP_ERR__STATE.rawValue)
    public static let queueFull = Self(rawValue: RD_KAFKA_RESP_ERR__QUEUE_FULL.rawValue)
    public static let messageTimedOut = Self(rawValue: RD_KAFKA_RESP_ERR__MSG_TIMED_OUT.rawValue)
    public static let fatal = Self(rawValue: RD_KAFKA_RESP_ERR__FATAL.rawValue)
    public static let purgedFromQueue = Self(rawValue: RD_KAFKA_RESP_ERR__PURGE_QUEUE.rawValue)
    public static let purgedInFlight = Self(rawValue: RD_KAFKA_RESP_ERR__PURGE_INFLIGHT.rawValue)
}
