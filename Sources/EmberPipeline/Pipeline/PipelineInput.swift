import EmberKafka

/// A topic-partition: the unit of ordering, assignment and commits.
public struct TopicPartition: Hashable, Sendable, CustomStringConvertible {
    public var topic: String
    public var partition: KafkaPartition

    public init(topic: String, partition: KafkaPartition) {
        self.topic = topic
        self.partition = partition
    }

    public var description: String { "\(topic)[\(partition)]" }
}

/// What the pipeline reads: the group consumer for `ember run`, a manually assigned
/// reader for `ember replay`. Called from the pipeline's consumer thread only, except
/// `markDone`, which any thread may call.
public protocol PipelineInput: AnyObject, Sendable {
    /// Waits up to `timeoutMilliseconds` for messages and assignment changes.
    func poll(timeoutMilliseconds: Int32) throws(KafkaError) -> [PipelineInputEvent]
    /// Stops fetching from every assigned partition while staying in the group.
    func pauseAll() throws(KafkaError)
    func resumeAll() throws(KafkaError)
    /// The message at `offset` is fully handled (its output or dead letter was acknowledged).
    func markDone(_ partition: TopicPartition, offset: KafkaOffset)
    /// Commits what `markDone` made committable, then leaves the group.
    func close() throws(KafkaError)
    /// True when a bounded input (replay) has read everything it was asked to.
    var isExhausted: Bool { get }
    /// Messages behind the end of the assigned partitions, when known (for the metrics line).
    func lag() -> Int64?
}

public enum PipelineInputEvent: Sendable {
    case message(KafkaMessage)
    /// Partitions taken away (revoked or lost): their in-flight work must not be committed.
    case revoked([TopicPartition])
    case assigned([TopicPartition])
}

/// What the pipeline writes: output records and dead letters, each acknowledged
/// through `onDelivery` once the broker has it (or it failed for good).
public protocol PipelineOutput: AnyObject, Sendable {
    func send(
        topic: String, key: [UInt8]?, value: [UInt8], headers: [KafkaHeader],
        onDelivery: @escaping @Sendable (Result<Void, KafkaError>) -> Void) throws(KafkaError)
    /// Waits until everything sent is acknowledged or the timeout passes.
    func flush(timeoutMilliseconds: Int32) throws(KafkaError)
}
