/// A partition number of a topic.
public struct KafkaPartition: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    public init(_ value: Int32) { self.rawValue = value }
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    public var description: String { String(rawValue) }
}

/// A message offset within one partition.
public struct KafkaOffset: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: Int64
    public init(rawValue: Int64) { self.rawValue = rawValue }
    public init(_ value: Int64) { self.rawValue = value }
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    public var description: String { String(rawValue) }
}

/// One Kafka header. Values are bytes; `nil` is a header with a null value.
public struct KafkaHeader: Hashable, Sendable {
    public var key: String
    public var value: [UInt8]?
    public init(key: String, value: [UInt8]?) { self.key = key; self.value = value }
    public init(key: String, string: String) { self.init(key: key, value: Array(string.utf8)) }
}

/// A message read from a topic. The bytes are copied out of librdkafka's buffer.
public struct KafkaMessage: Sendable, Equatable {
    public var topic: String
    public var partition: KafkaPartition
    public var offset: KafkaOffset
    public var key: [UInt8]?
    public var value: [UInt8]
    public var headers: [KafkaHeader]
    /// Milliseconds since the epoch, when the broker or producer set one.
    public var timestampMilliseconds: Int64?

    public init(
        topic: String, partition: KafkaPartition, offset: KafkaOffset, key: [UInt8]?, value: [UInt8],
        headers: [KafkaHeader] = [], timestampMilliseconds: Int64? = nil
    ) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.headers = headers
        self.timestampMilliseconds = timestampMilliseconds
    }

    /// The first header with this key.
    public func header(_ key: String) -> [UInt8]? {
        headers.first { $0.key == key }?.value ?? nil
    }
}

/// A partition of a named topic.
public struct KafkaTopicPartition: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var topic: String
    public var partition: KafkaPartition
    public init(topic: String, partition: KafkaPartition) { self.topic = topic; self.partition = partition }
    public static func < (a: Self, b: Self) -> Bool { (a.topic, a.partition) < (b.topic, b.partition) }
    public var description: String { "\(topic)[\(partition)]" }
}

extension KafkaMessage {
    /// The topic and partition this message was read from.
    public var topicPartition: KafkaTopicPartition { KafkaTopicPartition(topic: topic, partition: partition) }
}

/// A message to produce. The bytes are copied into librdkafka when it is sent.
public struct KafkaProducerRecord: Sendable, Equatable {
    public var topic: String
    /// `nil` lets librdkafka's partitioner choose from the key (consistent hashing).
    public var partition: KafkaPartition?
    public var key: [UInt8]?
    public var value: [UInt8]
    public var headers: [KafkaHeader]
    /// Milliseconds since the epoch; `nil` means now.
    public var timestampMilliseconds: Int64?

    public init(
        topic: String, partition: KafkaPartition? = nil, key: [UInt8]? = nil, value: [UInt8],
        headers: [KafkaHeader] = [], timestampMilliseconds: Int64? = nil
    ) {
        self.topic = topic
        self.partition = partition
        self.key = key
        self.value = value
        self.headers = headers
        self.timestampMilliseconds = timestampMilliseconds
    }
}

/// Where the broker stored a produced message.
public struct KafkaDelivery: Sendable, Equatable {
    public var topic: String
    public var partition: KafkaPartition
    public var offset: KafkaOffset

    public init(topic: String, partition: KafkaPartition, offset: KafkaOffset) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
    }
}
