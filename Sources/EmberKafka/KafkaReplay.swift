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
    private var starts: [KafkaPartition: Int64]
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
            "fetch.wait.max.ms": "100",
            "auto.offset.reset": "earliest",
        ]
        properties.merge(configuration.properties) { _, override in override }
        client = try RDKafkaClient(kind: .consumer, properties: properties, logger: logger)
        let topic = configuration.topic
        let timeout = configuration.requestTimeout.timeoutMilliseconds
        let probe = Probe(client: client, timeout: configuration.requestTimeout, logger: logger)

        guard let partitionCount = try client.topicPartitionCounts(timeoutMilliseconds: timeout)[topic] else {
            throw .client("topic \(topic) does not exist", code: .invalidArgument)
        }
        let all = (0..<Int32(partitionCount)).map { KafkaTopicPartition(topic: topic, partition: KafkaPartition($0)) }
        var watermarks: [KafkaPartition: (low: Int64, high: Int64)] = [:]
        for partition in all {
            watermarks[partition.partition] = try probe.watermarks(partition)
        }
        var starts: [KafkaPartition: Int64] = [:]
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
            let answers = try client.offsetsForTimes(all, timestampMilliseconds: milliseconds, timeoutMilliseconds: timeout)
            for partition in all {
                starts[partition.partition] = try probe.offset(
                    for: milliseconds, in: partition, brokerAnswer: answers[partition] ?? nil, watermarks: watermarks[partition.partition]!)
            }
        }
        var ends: [KafkaPartition: Int64] = [:]
        switch configuration.end {
        case .highWatermarks:
            for (partition, marks) in watermarks { ends[partition] = marks.high }
        case .timestamp(let milliseconds):
            let answers = try client.offsetsForTimes(all, timestampMilliseconds: milliseconds, timeoutMilliseconds: timeout)
            for partition in all {
                ends[partition.partition] = try probe.offset(
                    for: milliseconds, in: partition, brokerAnswer: answers[partition] ?? nil, watermarks: watermarks[partition.partition]!)
            }
        }
        ranges = starts.keys.sorted().compactMap { partition in
            guard let start = starts[partition], let end = ends[partition], start < end else { return nil }
            return KafkaReplayRange(partition: partition, start: KafkaOffset(start), end: KafkaOffset(end))
        }
        self.starts = Dictionary(uniqueKeysWithValues: ranges.map { ($0.partition, $0.start.rawValue) })
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
                // A message fetched for a planning probe could still arrive; only the range counts.
                guard let start = starts[message.partition], let end = ends[message.partition],
                    message.offset.rawValue >= start, !finishedPartitions.contains(message.partition)
                else { continue }
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

/// Planning reads: watermarks and timestamp lookups that do not trust the broker blindly.
///
/// Some Kafka-compatible brokers answer ListOffsets imperfectly (tansu's LATEST lags by
/// the last batch and its offsetsForTimes answers 0; librdkafka's mock cluster answers
/// -1 for any timestamp). So a high watermark is raised to the one the broker reports
/// in a Fetch response, and a broker's offset for a timestamp is checked against the
/// messages around it; when the check fails the offset is found by binary search over
/// message timestamps (about log2(n) single-message reads). On a correct broker this
/// costs one or two reads per partition.
private struct Probe {
    let client: RDKafkaClient
    let timeout: Duration
    let logger: Logger

    /// ListOffsets watermarks, with the high one raised to the Fetch high watermark.
    func watermarks(_ partition: KafkaTopicPartition) throws(KafkaError) -> (low: Int64, high: Int64) {
        var marks = try client.queryWatermarks(partition, timeoutMilliseconds: timeout.timeoutMilliseconds)
        if marks.high > marks.low {
            _ = try read(partition, at: marks.high - 1)
            if let fetched = client.cachedWatermarks(partition), fetched.high > marks.high {
                logger.debug("Kafka ListOffsets high watermark lags the Fetch one", metadata: ["kafka.partition": "\(partition)", "kafka.listOffsets": "\(marks.high)", "kafka.fetch": "\(fetched.high)"])
                marks.high = fetched.high
            }
        }
        return marks
    }

    /// The first offset whose message has a timestamp at or after `milliseconds`
    /// (`high` when none has), checking the broker's answer first.
    func offset(for milliseconds: Int64, in partition: KafkaTopicPartition, brokerAnswer: KafkaOffset?, watermarks: (low: Int64, high: Int64)) throws(KafkaError) -> Int64 {
        let (low, high) = watermarks
        guard low < high else { return high }
        let candidate = min(max(brokerAnswer?.rawValue ?? high, low), high)
        if try isBoundary(candidate, milliseconds, partition, low: low, high: high) { return candidate }
        logger.debug("Kafka offsetsForTimes answer failed the check; searching by timestamp", metadata: ["kafka.partition": "\(partition)", "kafka.answer": "\(brokerAnswer.map { "\($0)" } ?? "none")"])
        var lower = low
        var upper = high
        while lower < upper {
            let middle = lower + (upper - lower) / 2
            guard let found = try read(partition, at: middle), found.offset < upper else {
                upper = middle
                continue
            }
            if (found.timestamp ?? Int64.min) >= milliseconds { upper = middle } else { lower = found.offset + 1 }
        }
        return lower
    }

    /// True when every message before `offset` is older than `milliseconds` at the boundary and the one at it is not.
    private func isBoundary(_ offset: Int64, _ milliseconds: Int64, _ partition: KafkaTopicPartition, low: Int64, high: Int64) throws(KafkaError) -> Bool {
        if offset < high {
            guard let at = try read(partition, at: offset), (at.timestamp ?? Int64.min) >= milliseconds else { return false }
        }
        if offset > low {
            guard let before = try read(partition, at: offset - 1), before.offset < offset,
                (before.timestamp ?? Int64.min) < milliseconds
            else { return false }
        }
        return true
    }

    /// The first message at or after `offset`; `nil` when the partition ends before one.
    private func read(_ partition: KafkaTopicPartition, at offset: Int64) throws(KafkaError) -> (offset: Int64, timestamp: Int64?)? {
        try client.assign([RDKafkaPartitionEntry(topicPartition: partition, offset: offset)])
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while ContinuousClock.now < deadline {
            switch client.consumerPoll(timeoutMilliseconds: 100) {
            case .message(let message)? where message.topicPartition == partition && message.offset.rawValue >= offset:
                return (message.offset.rawValue, message.timestampMilliseconds)
            case .partitionEOF(let eof, let next)? where eof == partition && next.rawValue >= offset:
                return nil
            case .error(let error)? where error.isFatal:
                throw error
            default:
                continue
            }
        }
        throw .client("no answer reading \(partition) at offset \(offset) within \(timeout)", code: .timedOut)
    }
}
