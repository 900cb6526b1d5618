import CRdKafka
import Logging

/// What a client's C callbacks report to the Swift types above this folder.
///
/// Retain contract: an `RDKafkaClient` owns its callbacks object strongly and passes it
/// to librdkafka unretained (`rd_kafka_conf_set_opaque`). The handle is destroyed in the
/// client's `deinit` before the callbacks object is released, and librdkafka calls no
/// callback after `rd_kafka_destroy` returns, so the unretained pointer stays valid.
final class RDKafkaCallbacks: @unchecked Sendable {
    let logger: Logger
    /// Called inside `rd_kafka_consumer_poll` (or `rd_kafka_consumer_close`) on the polling
    /// thread. Set before the first poll; never changed afterwards.
    var onRebalance: ((RDKafkaRebalance) -> Void)?
    /// Called inside `rd_kafka_poll`/`rd_kafka_consumer_poll` on the polling thread.
    var onError: ((KafkaError) -> Void)?
    /// Whether the configured assignment strategy is cooperative; decides the rebalance
    /// calls when librdkafka cannot name the group's protocol. Set before the first poll.
    var configuredCooperative = true

    init(logger: Logger) { self.logger = logger }
}

/// A rebalance as the consumer sees it. The C callback already performed the
/// (incremental) assign when `.assigned` arrives, and performs the unassign right after
/// the handler for `.revoking` returns, so the handler can still commit for them.
enum RDKafkaRebalance {
    case assigned([KafkaTopicPartition])
    /// `lost` is true when the partitions were taken away without a clean revoke
    /// (session timeout, fenced member); committing for them would be refused.
    case revoking([KafkaTopicPartition], lost: Bool)
}

private func callbacks(_ rk: OpaquePointer?) -> RDKafkaCallbacks? {
    guard let rk, let opaque = rd_kafka_opaque(rk) else { return nil }
    return Unmanaged<RDKafkaCallbacks>.fromOpaque(opaque).takeUnretainedValue()
}

/// librdkafka log lines go to the client's `Logger`. Runs on librdkafka's internal
/// threads; `Logger` is thread-safe. Routine levels map below `.info` because this is a library.
func rdKafkaLogCallback(
    _ rk: OpaquePointer?, _ level: Int32, _ facility: UnsafePointer<CChar>?, _ line: UnsafePointer<CChar>?
) {
    guard let callbacks = callbacks(rk), let line else { return }
    let logLevel: Logger.Level
    switch level {
    case ...2: logLevel = .error  // emerg, alert, crit
    case 3, 4: logLevel = .warning  // err (mostly transient: connection refused), warning
    case 5, 6: logLevel = .debug  // notice, info
    default: logLevel = .trace
    }
    callbacks.logger.log(
        level: logLevel, "\(String(cString: line))",
        metadata: ["kafka.facility": "\(facility.map { String(cString: $0) } ?? "")"])
}

/// Client-level errors (broker down, all brokers down, fatal errors).
func rdKafkaErrorCallback(
    _ rk: OpaquePointer?, _ code: Int32, _ reason: UnsafePointer<CChar>?, _ opaque: UnsafeMutableRawPointer?
) {
    guard let opaque else { return }
    let callbacks = Unmanaged<RDKafkaCallbacks>.fromOpaque(opaque).takeUnretainedValue()
    var error = KafkaError(
        code: rd_kafka_resp_err_t(rawValue: code), message: reason.map { String(cString: $0) })
    if error.code == RD_KAFKA_RESP_ERR__FATAL.rawValue, let rk {
        error = RDKafkaClient.fatalError(of: rk) ?? error
    }
    callbacks.onError?(error)
}

/// What the rebalance callback does for one rebalance event, decided from the event
/// and the group's rebalance protocol without touching librdkafka, so every branch is
/// tested without a group.
enum RDKafkaRebalancePlan: Equatable {
    enum Event { case assign, revoke, error }

    /// Assign the partitions (incrementally under cooperative rebalancing), then report `.assigned`.
    case assign(incremental: Bool)
    /// Report `.revoking` (the consumer still commits for them), then unassign them.
    case revoke(incremental: Bool)
    /// A rebalance error: report the whole current assignment as lost, then drop it with
    /// `incremental_unassign(current)` under cooperative rebalancing, which refuses the
    /// eager `assign(NULL)`, or with `assign(NULL)` under eager rebalancing.
    case dropAssignment(incremental: Bool)

    /// `protocolName` is `rd_kafka_rebalance_protocol`'s answer, which may be NULL (or
    /// "NONE") when librdkafka has not settled the protocol: the configured assignment
    /// strategy decides then.
    init(event: Event, protocolName: String?, configuredCooperative: Bool) {
        let incremental: Bool
        switch protocolName {
        case "COOPERATIVE": incremental = true
        case "EAGER": incremental = false
        default: incremental = configuredCooperative
        }
        switch event {
        case .assign: self = .assign(incremental: incremental)
        case .revoke: self = .revoke(incremental: incremental)
        case .error: self = .dropAssignment(incremental: incremental)
        }
    }
}

/// The rebalance callback: performs the assign/unassign that matches the group's
/// rebalance protocol (incremental for cooperative-sticky) and tells the consumer.
func rdKafkaRebalanceCallback(
    _ rk: OpaquePointer?, _ code: rd_kafka_resp_err_t,
    _ partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?, _ opaque: UnsafeMutableRawPointer?
) {
    guard let rk, let opaque else { return }
    let callbacks = Unmanaged<RDKafkaCallbacks>.fromOpaque(opaque).takeUnretainedValue()
    let event: RDKafkaRebalancePlan.Event
    switch code {
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS: event = .assign
    case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS: event = .revoke
    default:
        event = .error
        callbacks.logger.error("Kafka rebalance error: \(KafkaError(code: code))")
    }
    let plan = RDKafkaRebalancePlan(
        event: event, protocolName: rd_kafka_rebalance_protocol(rk).map { String(cString: $0) },
        configuredCooperative: callbacks.configuredCooperative)
    let list = partitions.map { RDKafkaTopicPartitionList.read($0).map(\.topicPartition) } ?? []
    func check(_ error: OpaquePointer?, _ what: String) {
        guard let error else { return }
        callbacks.logger.error("Kafka \(what) failed: \(KafkaError(consuming: error))")
    }
    func checkCode(_ code: rd_kafka_resp_err_t, _ what: String) {
        if code != RD_KAFKA_RESP_ERR_NO_ERROR {
            callbacks.logger.error("Kafka \(what) failed: \(KafkaError(code: code))")
        }
    }
    switch plan {
    case .assign(incremental: true):
        check(rd_kafka_incremental_assign(rk, partitions), "incremental assign")
        callbacks.onRebalance?(.assigned(list))
    case .assign(incremental: false):
        checkCode(rd_kafka_assign(rk, partitions), "assign")
        callbacks.onRebalance?(.assigned(list))
    case .revoke(let incremental):
        callbacks.onRebalance?(.revoking(list, lost: rd_kafka_assignment_lost(rk) != 0))
        if incremental {
            check(rd_kafka_incremental_unassign(rk, partitions), "incremental unassign")
        } else {
            checkCode(rd_kafka_assign(rk, nil), "unassign")
        }
    case .dropAssignment(let incremental):
        var current: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        guard rd_kafka_assignment(rk, &current) == RD_KAFKA_RESP_ERR_NO_ERROR, let current else {
            callbacks.logger.error("Kafka rebalance error: cannot read the assignment to drop it")
            return
        }
        defer { rd_kafka_topic_partition_list_destroy(current) }
        callbacks.onRebalance?(.revoking(RDKafkaTopicPartitionList.read(current).map(\.topicPartition), lost: true))
        if incremental {
            check(rd_kafka_incremental_unassign(rk, current), "incremental unassign after a rebalance error")
        } else {
            checkCode(rd_kafka_assign(rk, nil), "unassign after a rebalance error")
        }
    }
}

/// A produced message's completion, carried through librdkafka as the message opaque.
/// `send` retains one box per message; the delivery-report callback releases it exactly
/// once (librdkafka reports every accepted message once: delivered, failed or purged).
final class RDKafkaDeliveryBox {
    let completion: @Sendable (Result<KafkaDelivery, KafkaError>) -> Void
    init(_ completion: @escaping @Sendable (Result<KafkaDelivery, KafkaError>) -> Void) {
        self.completion = completion
    }
}

/// The delivery-report callback: runs inside `rd_kafka_poll`/`rd_kafka_flush`.
func rdKafkaDeliveryCallback(
    _ rk: OpaquePointer?, _ message: UnsafePointer<rd_kafka_message_t>?, _ opaque: UnsafeMutableRawPointer?
) {
    guard let message, let boxPointer = message.pointee._private else { return }
    let box = Unmanaged<RDKafkaDeliveryBox>.fromOpaque(boxPointer).takeRetainedValue()
    let m = message.pointee
    let topic = m.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
    if m.err == RD_KAFKA_RESP_ERR_NO_ERROR {
        box.completion(.success(KafkaDelivery(topic: topic, partition: KafkaPartition(m.partition), offset: KafkaOffset(m.offset))))
    } else {
        var error = KafkaError(code: m.err, message: "delivery to \(topic) failed: \(String(cString: rd_kafka_err2str(m.err)))")
        // After a fatal error every outstanding message fails; report the cause, not the purge.
        if let rk, let fatal = RDKafkaClient.fatalError(of: rk) {
            error = fatal
        }
        box.completion(.failure(error))
    }
}
