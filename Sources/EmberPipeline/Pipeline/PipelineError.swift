import EmberKafka

/// Why a running pipeline stopped by itself (a fatal input or output error is
/// rethrown as the `KafkaError` it is).
public enum PipelineError: Error, Sendable, CustomStringConvertible {
    /// Even a dead letter without the original event was refused for good, so the item
    /// cannot be accounted for anywhere; the worker stops rather than commit past it.
    case deadLetterRefused(topic: String, partition: KafkaTopicPartition, offset: KafkaOffset, reason: KafkaError)

    public var description: String {
        switch self {
        case .deadLetterRefused(let topic, let partition, let offset, let reason):
            "the dead-letter topic \(topic) refuses the dead letter of \(partition) offset \(offset): \(reason)"
        }
    }
}
