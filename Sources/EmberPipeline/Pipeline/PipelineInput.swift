import EmberKafka
import Foundation

/// What the pipeline reads: the group consumer for `ember run`, a replay reader for
/// `ember replay`. `poll`, `pauseAll`, `resumeAll`, `holdBack`, `backloggedPartitions`
/// and `close` are called from the pipeline's consumer thread; `markDone` from any thread.
public protocol PipelineInput: AnyObject, Sendable {
    /// Waits up to `timeout` for messages and assignment changes.
    func poll(timeout: Duration) throws(KafkaError) -> [KafkaConsumerEvent]
    /// Stops fetching from every assigned partition while staying in the group.
    /// Partitions assigned later follow the current state (paused or not).
    func pauseAll()
    /// Resumes every assigned partition except those held back.
    func resumeAll()
    /// Pauses exactly `partitions` on their own, for fairness between partitions, and
    /// releases those held back before; `pauseAll` still pauses every partition.
    func holdBack(_ partitions: Set<KafkaTopicPartition>)
    /// Assigned partitions with messages not yet polled (a partition not fetched yet,
    /// or not read from since its assignment, counts when it holds any).
    func backloggedPartitions() -> Set<KafkaTopicPartition>
    /// The message at `offset` is fully handled: its output or dead letter was acknowledged.
    @discardableResult
    func markDone(_ partition: KafkaTopicPartition, offset: KafkaOffset) -> Bool
    /// Commits what `markDone` made committable and leaves the group.
    func close() throws(KafkaError)
    /// True when a bounded input (replay) has delivered everything it was asked for.
    var isExhausted: Bool { get }
    /// Messages not yet finished across the assigned partitions, when known.
    func totalLag() -> Int64?
}

/// What the pipeline writes: output records and dead letters, each acknowledged
/// through `onDelivery` once the broker has it (or it failed for good).
public protocol PipelineOutput: AnyObject, Sendable {
    func send(
        _ record: KafkaProducerRecord,
        onDelivery: @escaping @Sendable (Result<KafkaDelivery, KafkaError>) -> Void) throws(KafkaError)
    /// Waits until everything sent is acknowledged or the timeout passes.
    func flush(timeout: Duration) throws(KafkaError)
}

extension KafkaProducer: PipelineOutput {}

extension KafkaConsumer: PipelineInput {
    public var isExhausted: Bool { false }

    public func totalLag() -> Int64? {
        let lags = lag().compactMap(\.lag)
        return lags.isEmpty ? nil : lags.reduce(0, +)
    }
}

/// `ember replay`'s input: a manually assigned reader that ends by itself. Nothing is
/// committed (there is no group); pausing simply stops polling it. An optional rate
/// limit spaces the messages out (a token bucket of one second's worth).
public final class ReplayInput: PipelineInput, @unchecked Sendable {
    private let replay: KafkaReplay
    private let maxPerSecond: Double?
    /// Touched by the consumer thread only.
    private var paused = false
    private var tokens: Double
    private var refilledAt = ContinuousClock.now

    public init(_ replay: KafkaReplay, maxPerSecond: Double? = nil) {
        self.replay = replay
        self.maxPerSecond = maxPerSecond
        tokens = maxPerSecond ?? 0
    }

    public var progress: KafkaReplayProgress { replay.progress }

    public func poll(timeout: Duration) throws(KafkaError) -> [KafkaConsumerEvent] {
        if paused {
            sleep(timeout)
            return []
        }
        guard let maxPerSecond else { return try replay.poll(timeout: timeout).map { .message($0) } }
        let now = ContinuousClock.now
        tokens = min(maxPerSecond, tokens + maxPerSecond * (now - refilledAt).seconds)
        refilledAt = now
        guard tokens >= 1 else {
            sleep(.seconds((1 - tokens) / maxPerSecond))
            return []
        }
        // Never more than the bucket holds: KafkaReplay hands out at most its poll size.
        let messages = try replay.poll(timeout: timeout)
        tokens -= Double(messages.count)
        return messages.map { .message($0) }
    }

    private func sleep(_ duration: Duration) {
        Thread.sleep(forTimeInterval: max(0, duration.seconds))
    }

    public func pauseAll() { paused = true }
    public func resumeAll() { paused = false }
    // A replay reads its partitions in one planned pass, without a window to share out.
    public func holdBack(_ partitions: Set<KafkaTopicPartition>) {}
    public func backloggedPartitions() -> Set<KafkaTopicPartition> { [] }
    public func markDone(_ partition: KafkaTopicPartition, offset: KafkaOffset) -> Bool { true }
    public func close() throws(KafkaError) {}
    public var isExhausted: Bool { replay.isFinished }

    public func totalLag() -> Int64? {
        let progress = replay.progress
        return progress.plannedOffsets - Int64(progress.fraction * Double(progress.plannedOffsets))
    }
}

extension Duration {
    /// The duration in seconds, for rates and timeouts (also used by the `ember` tool).
    package var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
