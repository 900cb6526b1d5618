import CRdKafka

/// Facts about the librdkafka linked into this process.
public enum Librdkafka {
    /// The runtime version string, such as `2.8.0`.
    public static var version: String { String(cString: rd_kafka_version_str()) }

    /// The runtime version as librdkafka encodes it (`0xMMmmrrxx`).
    public static var versionNumber: Int32 { rd_kafka_version() }

    /// tansu and the consumer-group code need at least 2.2 (2.0.2 fails the
    /// ApiVersions handshake against tansu with "Read underflow").
    public static let minimumVersionNumber: Int32 = 0x0202_00ff

    public static var isSupported: Bool { versionNumber >= minimumVersionNumber }
}
