import EmberKafka
import Foundation

/// What the pipeline reads: the group consumer for `ember run`, a replay reader for
/// `ember replay`. `poll`, `pauseAll`, `resumeAll` and `close` are called from the
/// pipeline's consumer thread; `markDone` from any thread.
public protocol PipelineInput: AnyObject, Sendable {
    /// Waits up to `timeout` for messages and assignment changes.
    func poll(timeout: Duration) throws(KafkaError) -> [KafkaConsumerEvent]
    /// Stops fetching from every assigned partition while staying in the group.
    func pauseAll()
    func resumeAll()
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
/// committed (there is no group); pausing simply stops polling it.
public final class ReplayInput: PipelineInput, @unchecked Sendable {
    private let replay: KafkaReplay
    /// Touched by the consumer thread only.
    private var paused = false

    public init(_ replay: KafkaReplay) { self.replay = replay }

    public var progress: KafkaReplayProgress { replay.progress }

    public func poll(timeout: Duration) throws(KafkaError) -> [KafkaConsumerEvent] {
        if paused {
            Thread.sleep(forTimeInterval: Double(timeout.components.attoseconds) / 1e18 + Double(timeout.components.seconds))
            return []
        }
        return try replay.poll(timeout: timeout).map { .message($0) }
    }

    public func pauseAll() { paused = true }
    public func resumeAll() { paused = false }
    public func markDone(_ partition: KafkaTopicPartition, offset: KafkaOffset) -> Bool { true }
    public func close() throws(KafkaError) {}
    public var isExhausted: Bool { replay.isFinished }

    public func totalLag() -> Int64? {
        let progress = replay.progress
        return progress.plannedOffsets - Int64(progress.fraction * Double(progress.plannedOffsets))
    }
}
