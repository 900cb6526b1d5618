import EmberKafka
import EmberPipeline
import Foundation
import Logging
import Metrics

/// What `/healthz` and `/readyz` answer, gathered as start-up proceeds.
///
/// - Liveness (`/healthz`): the process answers, and no pipeline stage thread has been
///   busy on one poll, item or batch (or, for the consumer thread, silent) for longer
///   than `health.stall_timeout_s`. A failing liveness probe means "restart me".
/// - Readiness (`/readyz`): the model is loaded, the brokers answered a metadata request
///   within the last probe interval, and (for `ember run`) the consumer is a member of
///   its group, with partitions or idle because the group has more members than the
///   input has partitions. A worker that is not ready is not broken: it is starting,
///   rebalancing or cut off from Kafka. A draining worker (SIGTERM received) is not
///   ready either, so a load balancer or a rollout stops counting it at once.
final class WorkerHealth: @unchecked Sendable {
    struct Report: Sendable {
        var ok: Bool
        var lines: [String]
        var body: String { lines.joined(separator: "\n") + "\n" }
    }

    let stallSeconds: Double
    private let lock = NSLock()
    private var modelID: String?
    private var heartbeats: StageHeartbeats?
    private var brokers: KafkaProbe?
    private let needsGroup: Bool
    private var draining = false

    /// `needsGroup`: readiness includes group membership (`ember run`; not `ember replay`).
    init(stallSeconds: Double, needsGroup: Bool) {
        self.stallSeconds = stallSeconds
        self.needsGroup = needsGroup
    }

    func modelLoaded(_ id: String) { lock.withLock { modelID = id } }
    func watch(_ heartbeats: StageHeartbeats) { lock.withLock { self.heartbeats = heartbeats } }
    func watchKafka(_ probe: KafkaProbe) { lock.withLock { brokers = probe } }
    /// Shutdown began: readiness fails from now on; liveness is unchanged.
    func drainStarted() { lock.withLock { draining = true } }

    func stop() { lock.withLock { brokers }?.stop() }

    func liveness() -> Report {
        guard let slots = lock.withLock({ heartbeats })?.snapshot() else {
            return Report(ok: true, lines: ["ok: starting (pipeline threads not started yet)"])
        }
        var lines: [String] = []
        var ok = true
        for slot in slots {
            if slot.finished {
                lines.append("\(slot.name): stopped")
            } else if let busy = slot.busySeconds {
                let stalled = busy > stallSeconds
                ok = ok && !stalled
                lines.append("\(slot.name): \(stalled ? "STALLED" : "busy") for \(String(format: "%.1f", busy)) s (bound \(Setting.format(stallSeconds)) s)")
            } else {
                lines.append("\(slot.name): idle")
            }
        }
        return Report(ok: ok, lines: [ok ? "ok" : "stalled"] + lines)
    }

    func readiness() -> Report {
        let (modelID, brokers, draining) = lock.withLock { (self.modelID, self.brokers, self.draining) }
        var lines: [String] = []
        var ok = true
        func check(_ good: Bool, _ line: String) {
            ok = ok && good
            lines.append((good ? "ok   " : "FAIL ") + line)
        }
        if draining { check(false, "draining: shutting down, taking no new work") }
        check(modelID != nil, modelID.map { "model: \($0)" } ?? "model: not loaded yet")
        switch brokers?.state {
        case nil: check(false, "brokers: not checked yet")
        case .reachable(let age)?: check(true, "brokers: answered \(String(format: "%.0f", age)) s ago")
        case .unreachable(let reason)?: check(false, "brokers: \(reason)")
        }
        if needsGroup {
            if let (memberID, partitions) = brokers?.membership {
                if memberID == nil {
                    check(false, "group: not joined yet")
                } else if partitions > 0 {
                    check(true, "group: joined with \(partitions) partitions")
                } else {
                    check(true, "group: joined, idle (no partitions: more members than input partitions)")
                }
            } else {
                check(false, "group: consumer not started yet")
            }
        }
        return Report(ok: ok, lines: [ok ? "ready" : "not ready"] + lines)
    }
}

/// Watches Kafka on its own thread, because librdkafka's calls block: the brokers'
/// metadata every `interval` seconds and the consumer's group membership every second.
/// A probe only reads the last answers, so the HTTP handlers never block. It also keeps
/// the `ember_consumer_lag` gauge (messages not yet finished across the assigned
/// partitions, from cached fetch watermarks) for dashboards and alerts.
final class KafkaProbe: @unchecked Sendable {
    enum State: Sendable {
        /// Seconds since the last answer.
        case reachable(age: Double)
        case unreachable(String)
    }

    private let admin: KafkaAdmin
    private let consumer: KafkaConsumer?
    private let interval: Double
    private let lock = NSLock()
    private var lastAnswer: ContinuousClock.Instant?
    private var lastError: String?
    private var member: (id: String?, partitions: Int)?
    private var stopped = false
    private let wake = DispatchSemaphore(value: 0)
    private let lagGauge = Gauge(label: "ember_consumer_lag")

    /// `answeredNow`: the brokers just answered (the start-up topic check).
    init(admin: KafkaAdmin, consumer: KafkaConsumer?, interval: Double = 10, answeredNow: Bool) {
        self.admin = admin
        self.consumer = consumer
        self.interval = interval
        if answeredNow { lastAnswer = .now }
        DispatchQueue(label: "ember.health.kafka").async { [self] in loop() }
    }

    var state: State {
        lock.withLock {
            // Two missed rounds in a row make the brokers unreachable.
            if let lastAnswer, (ContinuousClock.now - lastAnswer) < .seconds(interval * 2 + 5) {
                return .reachable(age: (ContinuousClock.now - lastAnswer).seconds)
            }
            return .unreachable(lastError ?? "no answer yet")
        }
    }

    /// The consumer's member id (nil before it joined) and its partition count; nil
    /// before the first look or without a consumer.
    var membership: (String?, Int)? { lock.withLock { member.map { ($0.id, $0.partitions) } } }

    func stop() {
        lock.withLock { stopped = true }
        wake.signal()
    }

    private func loop() {
        var nextMetadata = ContinuousClock.now + .seconds(interval)
        while !lock.withLock({ stopped }) {
            if let consumer {
                // The member id arrives with the JoinGroup answer, the assignment only
                // after SyncGroup: a member is joined once it was given one (maybe empty).
                let current = (id: consumer.isGroupMember ? consumer.groupMemberID : nil, partitions: consumer.assignment.count)
                lock.withLock { member = current }
                if let lag = consumer.totalLag() { lagGauge.record(lag) }
            }
            if ContinuousClock.now >= nextMetadata {
                nextMetadata = ContinuousClock.now + .seconds(interval)
                do {
                    _ = try admin.partitionCounts(timeout: .seconds(max(1, interval / 2)))
                    lock.withLock { lastAnswer = .now; lastError = nil }
                } catch {
                    lock.withLock { lastError = "no metadata answer: \(error)" }
                }
            }
            _ = wake.wait(timeout: .now() + 1)
        }
    }
}
