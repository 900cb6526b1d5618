/// Where an input event was read: the `source` object of the output record and the
/// `ember-source-*` headers of a dead letter, so a vector can be traced back and the
/// newer of two racing events of one item wins.
public struct SourcePosition: Sendable, Equatable, Hashable, Codable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64

    public init(topic: String, partition: Int32, offset: Int64) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
    }
}
