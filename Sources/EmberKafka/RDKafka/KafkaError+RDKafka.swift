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

    /// An error as a test double reports it (fake pipeline outputs); real errors come from librdkafka.
    package init(testCode code: KafkaErrorCode, message: String, isFatal: Bool = false) {
        self.init(code: rd_kafka_resp_err_t(rawValue: code.rawValue), message: message, isFatal: isFatal)
    }

    /// A failed delivery that sending again cannot fix: the broker refuses this record
    /// or this topic for good (too large, invalid, not authorized, topic unknown).
    /// librdkafka has already retried what is retriable; a fatal error is not counted
    /// here because it ends the producer, not one record.
    public var isPermanentDeliveryFailure: Bool {
        !isFatal && Self.permanentDeliveryCodes.contains(code)
    }

    private static let permanentDeliveryCodes: Set<Int32> = Set([
        RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE,
        RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE, RD_KAFKA_RESP_ERR_INVALID_RECORD,
        RD_KAFKA_RESP_ERR_INVALID_TIMESTAMP,
        RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED,
        RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION,
        RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION, RD_KAFKA_RESP_ERR_POLICY_VIOLATION,
        RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT, RD_KAFKA_RESP_ERR__INVALID_ARG,
    ].map(\.rawValue))

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
