import Logging

/// What one `KafkaConsumer.poll` observed, in the order it happened.
public enum KafkaConsumerEvent: Sendable, Equatable {
    /// A message to process. Call `markDone` when its output is acknowledged.
    case message(KafkaMessage)
    /// Partitions added to this member (cooperative rebalancing adds incrementally).
    case assigned([KafkaTopicPartition])
    /// Partitions taken away cleanly. Done offsets up to this point were committed;
    /// in-flight work for them must be dropped (the new owner re-processes it).
    case revoked([KafkaTopicPartition])
    /// Partitions taken away without a clean revoke (session timeout, fenced member).
    /// Nothing more is committed for them; drop their in-flight work.
    case lost([KafkaTopicPartition])
    /// A non-fatal client error (broker unreachable, topic missing). librdkafka keeps
    /// retrying; fatal errors are thrown by `poll` instead.
    case error(KafkaError)
}

/// Per-partition lag for the metrics line.
public struct KafkaPartitionLag: Sendable, Equatable {
    public var topicPartition: KafkaTopicPartition
    /// The log end offset from the last Fetch response.
    public var highWatermark: KafkaOffset
    /// The offset that would be committed now (all below are done), or the fetch
    /// position when nothing was delivered since assignment.
    public var committable: KafkaOffset?
    /// Messages delivered by `poll` and not yet marked done.
    public var inFlight: Int
    /// `highWatermark - committable`: messages not yet finished. `nil` when unknown.
    public var lag: Int64? { committable.map { max(0, highWatermark.rawValue - $0.rawValue) } }
}

/// An at-least-once group consumer over librdkafka.
///
/// Drive it from one dedicated thread (or serial Dispatch queue) that calls `poll`
/// continuously, also while paused, so the member stays in the group. Everything else
/// (`markDone`, `pauseAll`, `resumeAll`, `lag`, `commit`) may be called from any thread.
///
/// Offsets: librdkafka's automatic offset store is off. `markDone` finishes a message;
/// the per-partition contiguous watermark of finished messages (`OffsetTracker`) is
/// stored at the next `poll` and committed every `commitInterval`, on `commit()`, when
/// partitions are revoked, and on `close()`.
public final class KafkaConsumer: @unchecked Sendable {
    public let configuration: KafkaConsumerConfiguration
    private let client: RDKafkaClient
    private let logger: Logger
    private let state = Locked(State())
    /// Events gathered during one `poll` (rebalance callbacks run inside it). Poll thread only.
    private var pendingEvents: [KafkaConsumerEvent] = []
    /// Index in `pendingEvents` from which messages are not yet recorded in their tracker.
    /// They are recorded in one locked pass per poll, and before any rebalance is handled.
    private var unbegunFrom: Int?

    private struct State {
        var partitions: [KafkaTopicPartition: PartitionState] = [:]
        var paused = false
        /// Partitions paused on their own (`holdBack`), also while the rest is resumed.
        var heldBack: Set<KafkaTopicPartition> = []
        var closed = false
        /// An assignment (possibly empty) was served since the last lost one: the
        /// consumer is a member of its group, with partitions or idle.
        var inGroup = false
    }

    private struct PartitionState {
        var tracker = OffsetTracker()
        /// The watermark last handed to librdkafka's offset store.
        var stored: KafkaOffset?
        /// Where fetching started, for a partition nothing was read from since its
        /// assignment (librdkafka's position stays unknown until a message is consumed).
        var start: StartOffset = .unasked
    }

    private enum StartOffset {
        case unasked
        /// The group's committed offset could not be read; ask again after this instant.
        case retry(after: ContinuousClock.Instant)
        /// The committed offset, or `nil` when the group has none (then `auto.offset.reset` decides).
        case committed(KafkaOffset?)
    }

    /// How long a failed committed-offset request waits before it is asked again.
    private static let startOffsetRetryInterval = Duration.seconds(10)

    /// Creates the consumer and subscribes; partitions arrive as `.assigned` events from `poll`.
    public init(configuration: KafkaConsumerConfiguration, logger: Logger = Logger(label: "ember.kafka.consumer")) throws(KafkaError) {
        self.configuration = configuration
        self.logger = logger
        let properties = try configuration.librdkafkaProperties()
        client = try RDKafkaClient(kind: .consumer, properties: properties, logger: logger)
        client.callbacks.onRebalance = { [weak self] rebalance in self?.rebalanced(rebalance) }
        client.callbacks.configuredCooperative = properties["partition.assignment.strategy"]?.contains("cooperative") ?? false
        client.callbacks.onError = { [weak self] error in self?.pendingEvents.append(.error(error)) }
        try client.subscribe(topics: configuration.topics)
        logger.debug("Kafka consumer subscribed", metadata: ["kafka.topics": "\(configuration.topics)", "kafka.group": "\(configuration.groupID)"])
    }

    deinit {
        // Leave the group rather than hold the partitions until the session times out.
        try? close()
    }

    // MARK: polling thread

    /// Waits up to `timeout` for the first message or event, then returns everything
    /// already available, at most `maxMessagesPerPoll` messages. Throws fatal errors
    /// and after `close()`.
    public func poll(timeout: Duration) throws(KafkaError) -> [KafkaConsumerEvent] {
        if state.withLock({ $0.closed }) { throw .closed("consumer") }
        storeDoneOffsets()
        var remaining = configuration.maxMessagesPerPoll
        var wait = timeout.timeoutMilliseconds
        while remaining > 0, let result = client.consumerPoll(timeoutMilliseconds: wait) {
            wait = 0
            switch result {
            case .message(let message):
                if unbegunFrom == nil { unbegunFrom = pendingEvents.count }
                pendingEvents.append(.message(message))
                remaining -= 1
            case .partitionEOF:
                continue
            case .error(let error):
                if error.isFatal {
                    logger.error("Kafka consumer failed", metadata: ["kafka.error": "\(error)"])
                    throw error
                }
                pendingEvents.append(.error(error))
            }
        }
        beginPendingMessages()
        defer { pendingEvents.removeAll(keepingCapacity: true) }
        return pendingEvents
    }

    /// Records the messages gathered since the last call as in flight; drops those whose
    /// partition is not assigned (they cannot be committed).
    private func beginPendingMessages() {
        guard let first = unbegunFrom else { return }
        unbegunFrom = nil
        var untracked = Set<Int>()
        state.withLock { state in
            for index in first..<pendingEvents.count {
                guard case .message(let message) = pendingEvents[index] else { continue }
                if state.partitions[message.topicPartition] != nil {
                    state.partitions[message.topicPartition]!.tracker.begin(message.offset)
                } else {
                    untracked.insert(index)
                }
            }
        }
        if !untracked.isEmpty {
            logger.debug("Kafka messages for unassigned partitions dropped", metadata: ["kafka.count": "\(untracked.count)"])
            pendingEvents = pendingEvents.enumerated().filter { !untracked.contains($0.offset) }.map(\.element)
        }
    }

    /// Runs inside `rd_kafka_consumer_poll`/`rd_kafka_consumer_close` on the polling thread.
    private func rebalanced(_ rebalance: RDKafkaRebalance) {
        beginPendingMessages()
        switch rebalance {
        case .assigned(let partitions):
            let paused = state.withLock { state in
                for partition in partitions { state.partitions[partition] = PartitionState() }
                state.inGroup = true
                return state.paused
            }
            // librdkafka keeps a partition's pause flag across unassign/assign, so a
            // partition paused, then revoked or lost, comes back paused even when the
            // consumer was resumed meanwhile: set the flag to the consumer's state.
            // (A revoked partition left `heldBack`, so a new one is never held back.)
            if paused { client.pause(partitions) } else { client.resume(partitions) }
            logger.debug("Kafka partitions assigned", metadata: ["kafka.partitions": "\(partitions.sorted())"])
            pendingEvents.append(.assigned(partitions))
        case .revoking(let partitions, let lost):
            // Forget them first so late markDone calls for them are ignored.
            let final = state.withLock { state in
                partitions.compactMap { partition -> RDKafkaPartitionEntry? in
                    state.heldBack.remove(partition)
                    guard let watermark = state.partitions.removeValue(forKey: partition)?.tracker.watermark else { return nil }
                    return RDKafkaPartitionEntry(topicPartition: partition, offset: watermark.rawValue)
                }
            }
            if lost {
                state.withLock { $0.inGroup = false }
                logger.warning("Kafka partitions lost; their in-flight work is not committed", metadata: ["kafka.partitions": "\(partitions.sorted())"])
                pendingEvents.append(.lost(partitions))
            } else {
                // Store before committing: during the unassign that follows, librdkafka
                // commits the stored offsets of the partitions itself, and an older
                // stored offset would move the group's committed offset back.
                for failed in client.storeOffsets(final) {
                    logger.debug("Kafka offset not stored on revoke", metadata: ["kafka.partition": "\(failed.topicPartition)"])
                }
                do {
                    try client.commit(final)
                } catch {
                    logger.warning("Kafka commit on revoke failed; the new owner re-processes from the last commit", metadata: ["kafka.error": "\(error)"])
                }
                logger.debug("Kafka partitions revoked", metadata: ["kafka.partitions": "\(partitions.sorted())"])
                pendingEvents.append(.revoked(partitions))
            }
        }
    }

    /// Hands the watermarks that moved since the last call to librdkafka's offset store.
    private func storeDoneOffsets() {
        let entries = state.withLock { state -> [RDKafkaPartitionEntry] in
            var entries: [RDKafkaPartitionEntry] = []
            for (partition, partitionState) in state.partitions {
                guard let watermark = partitionState.tracker.watermark, watermark != partitionState.stored else { continue }
                state.partitions[partition]!.stored = watermark
                entries.append(RDKafkaPartitionEntry(topicPartition: partition, offset: watermark.rawValue))
            }
            return entries
        }
        for failed in client.storeOffsets(entries) {
            // Revoked between the lock and the store: the revoke already committed it.
            logger.debug("Kafka offset not stored", metadata: ["kafka.partition": "\(failed.topicPartition)"])
        }
    }

    // MARK: any thread

    /// Marks a delivered message finished (its output or dead letter is acknowledged).
    /// Returns false when the message's partition was revoked since: drop its result.
    @discardableResult
    public func markDone(_ message: KafkaMessage) -> Bool {
        markDone(message.topicPartition, offset: message.offset)
    }

    @discardableResult
    public func markDone(_ partition: KafkaTopicPartition, offset: KafkaOffset) -> Bool {
        state.withLock { state in
            guard state.partitions[partition] != nil else { return false }
            return state.partitions[partition]!.tracker.finish(offset)
        }
    }

    /// Stops fetching from every assigned partition (and partitions assigned later)
    /// until `resumeAll`. Keep polling while paused.
    public func pauseAll() {
        let changed = state.withLock { state in
            defer { state.paused = true }
            return !state.paused
        }
        if changed {
            client.pause(client.assignment())
            logger.debug("Kafka consumer paused")
        }
    }

    /// Resumes every assigned partition except those held back.
    public func resumeAll() {
        let (changed, heldBack) = state.withLock { state in
            defer { state.paused = false }
            return (state.paused, state.heldBack)
        }
        if changed {
            client.resume(client.assignment().filter { !heldBack.contains($0) })
            logger.debug("Kafka consumer resumed")
        }
    }

    /// Pauses exactly `partitions` (among the assigned ones) on their own and resumes
    /// those held back before, unless the whole consumer is paused (`resumeAll` then
    /// resumes all but the held-back ones). Pausing drops what librdkafka prefetched
    /// for them, so the other partitions' fetched messages come through `poll`.
    public func holdBack(_ partitions: Set<KafkaTopicPartition>) {
        let (paused, hold, release) = state.withLock { state in
            let held = partitions.filter { state.partitions[$0] != nil }
            defer { state.heldBack = held }
            return (state.paused, held.subtracting(state.heldBack), state.heldBack.subtracting(held))
        }
        guard !paused else { return }
        client.pause(Array(hold))
        client.resume(Array(release))
        if !hold.isEmpty || !release.isEmpty {
            logger.trace("Kafka partitions held back", metadata: ["kafka.partitions": "\(partitions.sorted())"])
        }
    }

    /// Assigned partitions with messages not yet polled, from cached Fetch watermarks and
    /// positions (no broker request, except once per assignment, below). A partition not
    /// fetched yet counts.
    ///
    /// librdkafka knows no position for a partition nothing was consumed from since its
    /// assignment, so for those the group's committed offset (asked once per assignment;
    /// again after a failure) tells where fetching started: an idle partition that only
    /// holds retained, already processed records must not count, or it would cap the busy
    /// partitions at their fair share of the window for as long as it stays idle.
    public func backloggedPartitions() -> Set<KafkaTopicPartition> {
        let assigned = state.withLock { Array($0.partitions.keys) }
        let positions = client.positions(assigned)
        var backlogged = Set<KafkaTopicPartition>()
        var unread: [KafkaTopicPartition: (low: Int64, high: Int64)] = [:]
        for partition in assigned {
            guard let watermarks = client.cachedWatermarks(partition) else {
                backlogged.insert(partition)
                continue
            }
            if let position = positions[partition] ?? nil {
                if watermarks.high > position.rawValue { backlogged.insert(partition) }
            } else if watermarks.high > watermarks.low {
                unread[partition] = watermarks
            }
        }
        guard !unread.isEmpty else { return backlogged }
        let starts = startOffsets(of: Array(unread.keys))
        for (partition, watermarks) in unread {
            guard case .committed(let committed)? = starts[partition] else {
                backlogged.insert(partition)  // start unknown: count it, as before the fetch
                continue
            }
            let start: Int64
            switch (committed, configuration.autoOffsetReset) {
            case (let offset?, _) where offset.rawValue >= watermarks.low: start = offset.rawValue
            case (_, .latest): continue  // starts at the end: only new records count, and they set a position
            default: start = watermarks.low
            }
            if watermarks.high > start { backlogged.insert(partition) }
        }
        return backlogged
    }

    /// The start offsets of `partitions`, asking the group coordinator for those not
    /// asked yet since their assignment (1 s at most; a failure is retried later).
    private func startOffsets(of partitions: [KafkaTopicPartition]) -> [KafkaTopicPartition: StartOffset] {
        let now = ContinuousClock.now
        let toAsk = state.withLock { state in
            partitions.filter { partition in
                switch state.partitions[partition]?.start {
                case .unasked?: true
                case .retry(let after)?: now >= after
                default: false
                }
            }
        }
        var answers: [KafkaTopicPartition: StartOffset] = [:]
        if !toAsk.isEmpty {
            do {
                let committed = try client.committed(toAsk, timeoutMilliseconds: 1000)
                for partition in toAsk { answers[partition] = .committed(committed[partition] ?? nil) }
            } catch {
                logger.debug("Kafka committed offsets unavailable", metadata: ["kafka.error": "\(error)"])
                for partition in toAsk { answers[partition] = .retry(after: now + Self.startOffsetRetryInterval) }
            }
        }
        return state.withLock { state in
            var starts: [KafkaTopicPartition: StartOffset] = [:]
            for partition in partitions where state.partitions[partition] != nil {
                if let answer = answers[partition] { state.partitions[partition]!.start = answer }
                starts[partition] = state.partitions[partition]!.start
            }
            return starts
        }
    }

    public var isPaused: Bool { state.withLock { $0.paused } }

    /// The member id the group coordinator gave this consumer; nil until it has joined.
    /// Safe from any thread (librdkafka answers through its group thread).
    public var groupMemberID: String? { client.groupMemberID() }

    /// True once the group has handed this consumer an assignment (an idle member gets
    /// an empty one), until its partitions are lost; false while it is still joining.
    public var isGroupMember: Bool { state.withLock { $0.inGroup } }

    /// The partitions assigned to this member now.
    public var assignment: [KafkaTopicPartition] { state.withLock { Array($0.partitions.keys) }.sorted() }

    /// Stores the done watermarks and commits them synchronously.
    public func commit() throws(KafkaError) {
        storeDoneOffsets()
        try client.commit()
    }

    /// The group's committed offsets for `partitions` (default: the assignment), asked of
    /// the group coordinator. `nil` for a partition without a commit.
    public func committedOffsets(for partitions: [KafkaTopicPartition]? = nil, timeout: Duration = .seconds(10)) throws(KafkaError) -> [KafkaTopicPartition: KafkaOffset?] {
        try client.committed(partitions ?? assignment, timeoutMilliseconds: timeout.timeoutMilliseconds)
    }

    /// Lag per assigned partition from cached Fetch watermarks (no broker request).
    /// Partitions not fetched yet are left out.
    public func lag() -> [KafkaPartitionLag] {
        let trackers = state.withLock { state in state.partitions.mapValues { $0.tracker } }
        let positions = client.positions(Array(trackers.keys))
        return trackers.keys.sorted().compactMap { partition in
            guard let watermarks = client.cachedWatermarks(partition), let tracker = trackers[partition] else { return nil }
            return KafkaPartitionLag(
                topicPartition: partition, highWatermark: KafkaOffset(watermarks.high),
                committable: tracker.watermark ?? positions[partition] ?? nil, inFlight: tracker.inFlightCount)
        }
    }

    /// Commits the done watermarks and leaves the group (revoked partitions move to the
    /// other members at once). Idempotent; `poll` throws afterwards. Call it from the
    /// polling thread once its loop has stopped (librdkafka serves the final revoke here).
    public func close() throws(KafkaError) {
        let wasOpen = state.withLock { state in
            defer { state.closed = true }
            return !state.closed
        }
        guard wasOpen else { return }
        var firstError: KafkaError?
        storeDoneOffsets()
        do { try client.commit() } catch {
            logger.warning("Kafka commit at close failed", metadata: ["kafka.error": "\(error)"])
            firstError = error
        }
        do { try client.closeConsumer() } catch {
            logger.warning("Kafka consumer close failed", metadata: ["kafka.error": "\(error)"])
            firstError = firstError ?? error
        }
        pendingEvents.removeAll()
        unbegunFrom = nil
        logger.debug("Kafka consumer closed")
        if let firstError { throw firstError }
    }
}
