import Foundation
import Logging

/// What to replay: one topic, from a start to an end fixed when the replay begins.
public struct KafkaReplayConfiguration: Sendable, Equatable {
    public enum Start: Sendable, Equatable {
        /// Every partition from its first message at or after this time (offsetsForTimes).
        case timestamp(milliseconds: Int64)
        /// Only the listed partitions, each from its offset.
        case offsets([KafkaPartition: KafkaOffset])
        /// Every partition from its oldest retained message.
        case beginning
    }

    public enum End: Sendable, Equatable {
        /// The high watermarks when the replay starts: later messages are left to the live worker.
        case highWatermarks
        /// Up to (not including) the first message at or after this time.
        case timestamp(milliseconds: Int64)
    }

    /// Comma-separated `host:port` list. Required.
    public var bootstrapServers: String
    /// The topic to read. Required.
    public var topic: String
    public var start: Start
    /// Default `.highWatermarks`.
    public var end: End = .highWatermarks
    /// `client.id`. Default `ember-replay`.
    public var clientID = "ember-replay"
    /// Timeout of the metadata, ListOffsets and offsetsForTimes requests at start. Default 10 s.
    public var requestTimeout: Duration = .seconds(10)
    /// Most messages one `poll` returns. Default 500.
    public var maxMessagesPerPoll = 500
    /// Any librdkafka property, applied last.
    public var properties: [String: String] = [:]

    public init(bootstrapServers: String, topic: String, start: Start, end: End = .highWatermarks) {
        self.bootstrapServers = bootstrapServers
        self.topic = topic
        self.start = start
        self.end = end
    }

    /// Parses `ember replay --from-offsets`: `PARTITION:OFFSET` pairs separated by commas.
    public static func parseOffsets(_ text: String) throws(KafkaError) -> [KafkaPartition: KafkaOffset] {
        var result: [KafkaPartition: KafkaOffset] = [:]
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = item.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2,
                let partition = Int32(parts[0].trimmingCharacters(in: .whitespaces)), partition >= 0,
                let offset = Int64(parts[1].trimmingCharacters(in: .whitespaces)), offset >= 0
            else { throw .client("expected PARTITION:OFFSET pairs like 0:120,3:77, got '\(item)'") }
            if result.updateValue(KafkaOffset(offset), forKey: KafkaPartition(partition)) != nil {
                throw .client("partition \(partition) is listed twice in '\(text)'")
            }
        }
        if result.isEmpty { throw .client("no PARTITION:OFFSET pairs in '\(text)'") }
        return result
    }
}

/// The offsets one partition is replayed between: `start..<end`.
public struct KafkaReplayRange: Sendable, Equatable {
    public var partition: KafkaPartition
    public var start: KafkaOffset
    public var end: KafkaOffset
    /// Offsets in the range (an upper bound on messages: transaction markers take offsets).
    public var count: Int64 { max(0, end.rawValue - start.rawValue) }
}

/// How far a replay got.
public struct KafkaReplayProgress: Sendable, Equatable {
    public var messages: Int
    /// Offsets planned over all partitions (upper bound on messages).
    public var plannedOffsets: Int64
    public var partitionsFinished: Int
    public var partitions: Int
    /// 0…1, by offsets covered.
    public var fraction: Double
}

/// Reads a fixed range of a topic with manual assignment (no group membership, no
/// commits) and stops by itself at the end captured at start. Poll it from one thread.
public final class KafkaReplay: @unchecked Sendable {
    public let configuration: KafkaReplayConfiguration
    /// Partitions with something to replay, in partition order.
    public let ranges: [KafkaReplayRange]
    private let client: RDKafkaClient
    private let logger: Logger
    private var ends: [KafkaPartition: Int64]
    private var reached: [KafkaPartition: Int64]
    private var finishedPartitions: Set<KafkaPartition> = []
    private var messages = 0

    /// Resolves start and end offsets, then assigns; messages come from `poll`.
    public init(configuration: KafkaReplayConfiguration, logger: Logger = Logger(label: "ember.kafka.replay")) throws(KafkaError) {
        self.configuration = configuration
        self.logger = logger
        try requireNonEmpty(configuration.bootstrapServers, "bootstrapServers")
        try requireNonEmpty(configuration.topic, "topic")
        if configuration.maxMessagesPerPoll < 1 { throw .client("maxMessagesPerPoll must be at least 1") }
        var properties = [
            "bootstrap.servers": configuration.bootstrapServers,
            "client.id": configuration.clientID,
            // librdkafka's consumer needs a group id to poll; a replay never joins or commits.
            "group.id": "ember-replay-\(UUID().uuidString.lowercased())",
            "enable.auto.commit": "false",
            "enable.auto.offset.store": "false",
            "enable.partition.eof": "true",
            "auto.offset.reset": "earliest",
        ]
        properties.merge(configuration.properties) { _, override in override }
        client = try RDKafkaClient(kind: .consumer, properties: properties, logger: logger)
        let topic = configuration.topic
        let timeout = configuration.requestTimeout.timeoutMilliseconds

        guard let partitionCount = try client.topicPartitionCounts(timeoutMilliseconds: timeout)[topic] else {
            throw .client("topic \(topic) does not exist", code: .invalidArgument)
        }
        let all = (0..<Int32(partitionCount)).map { KafkaTopicPartition(topic: topic, partition: KafkaPartition($0)) }
        var starts: [KafkaPartition: Int64] = [:]
        var watermarks: [KafkaPartition: (low: Int64, high: Int64)] = [:]
        for partition in all {
            watermarks[partition.partition] = try client.queryWatermarks(partition, timeoutMilliseconds: timeout)
        }
        switch configuration.start {
        case .beginning:
            for (partition, marks) in watermarks { starts[partition] = marks.low }
        case .offsets(let offsets):
            for (partition, offset) in offsets {
                guard partition.rawValue < Int32(partitionCount) else {
                    throw .client("topic \(topic) has \(partitionCount) partition(s); partition \(partition) does not exist")
                }
                starts[partition] = max(offset.rawValue, watermarks[partition]!.low)
            }
        case .timestamp(let milliseconds):
            for (partition, offset) in try client.offsetsForTimes(all, timestampMilliseconds: milliseconds, timeoutMilliseconds: timeout) {
                starts[partition.partition] = offset?.rawValue ?? watermarks[partition.partition]!.high
            }
        }
        var ends: [KafkaPartition: Int64] = [:]
        switch configuration.end {
        case .highWatermarks:
            for (partition, marks) in watermarks { ends[partition] = marks.high }
        case .timestamp(let milliseconds):
            for (partition, offset) in try client.offsetsForTimes(all, timestampMilliseconds: milliseconds, timeoutMilliseconds: timeout) {
                ends[partition.partition] = offset?.rawValue ?? watermarks[partition.partition]!.high
            }
        }
        ranges = starts.keys.sorted().compactMap { partition in
            guard let start = starts[partition], let end = ends[partition], start < end else { return nil }
            return KafkaReplayRange(partition: partition, start: KafkaOffset(start), end: KafkaOffset(end))
        }
        self.ends = Dictionary(uniqueKeysWithValues: ranges.map { ($0.partition, $0.end.rawValue) })
        reached = Dictionary(uniqueKeysWithValues: ranges.map { ($0.partition, $0.start.rawValue) })
        try client.assign(ranges.map {
            RDKafkaPartitionEntry(topicPartition: KafkaTopicPartition(topic: topic, partition: $0.partition), offset: $0.start.rawValue)
        })
        logger.debug("Kafka replay planned", metadata: ["kafka.topic": "\(topic)", "kafka.ranges": "\(ranges.map { "\($0.partition):\($0.start)..<\($0.end)" })"])
    }

    deinit {
        try? client.closeConsumer()
    }

    /// True once every partition reached its end offset.
    public var isFinished: Bool { finishedPartitions.count == ranges.count }

    public var progress: KafkaReplayProgress {
        let planned = ranges.reduce(Int64(0)) { $0 + $1.count }
        let covered = ranges.reduce(Int64(0)) { $0 + min($1.count, (reached[$1.partition] ?? 0) - $1.start.rawValue) }
        return KafkaReplayProgress(
            messages: messages, plannedOffsets: planned, partitionsFinished: finishedPartitions.count,
            partitions: ranges.count, fraction: planned == 0 ? 1 : Double(covered) / Double(planned))
    }

    /// Messages inside the replay ranges, waiting up to `timeout` for the first one.
    /// Returns `[]` at once when finished. Throws fatal and permanent errors (a deleted topic).
    public func poll(timeout: Duration) throws(KafkaError) -> [KafkaMessage] {
        guard !isFinished else { return [] }
        var batch: [KafkaMessage] = []
        var wait = timeout.timeoutMilliseconds
        while batch.count < configuration.maxMessagesPerPoll, !isFinished,
            let result = client.consumerPoll(timeoutMilliseconds: wait)
        {
            wait = 0
            switch result {
            case .message(let message):
                guard let end = ends[message.partition], !finishedPartitions.contains(message.partition) else { continue }
                if message.offset.rawValue < end { batch.append(message) }
                advance(message.topicPartition, to: message.offset.rawValue + 1)
            case .partitionEOF(let partition, let next):
                advance(partition, to: next.rawValue)
            case .error(let error):
                if error.isFatal || error.errorCode == .topicAuthorizationFailed { throw error }
                logger.debug("Kafka replay error (librdkafka retries)", metadata: ["kafka.error": "\(error)"])
            }
        }
        messages += batch.count
        return batch
    }

    private func advance(_ partition: KafkaTopicPartition, to next: Int64) {
        guard let end = ends[partition.partition] else { return }
        reached[partition.partition] = max(reached[partition.partition] ?? 0, next)
        if next >= end, finishedPartitions.insert(partition.partition).inserted {
            client.pause([partition])
            logger.debug("Kafka replay partition finished", metadata: ["kafka.partition": "\(partition)"])
        }
    }
}
