import CRdKafka

/// Builds an `rd_kafka_conf_t` from string properties. Any librdkafka property can be
/// passed; an unknown name or invalid value throws with librdkafka's own explanation.
enum RDKafkaConfig {
    /// Returns a new configuration object; the caller owns it until it is passed to `rd_kafka_new`.
    static func make(_ properties: [String: String]) throws(KafkaError) -> OpaquePointer {
        guard let conf = rd_kafka_conf_new() else { throw .client("rd_kafka_conf_new failed") }
        // Sorted so that a failing property is reported deterministically.
        for (name, value) in properties.sorted(by: { $0.key < $1.key }) {
            var errorBuffer = [CChar](repeating: 0, count: 512)
            let result = rd_kafka_conf_set(conf, name, value, &errorBuffer, errorBuffer.count)
            if result != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                throw .client("invalid Kafka property \(name)=\(value): \(String(cBuffer: errorBuffer))")
            }
        }
        return conf
    }
}

extension String {
    /// Decodes a NUL-terminated C string that librdkafka wrote into a buffer.
    init(cBuffer: [CChar]) {
        self.init(decoding: cBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
