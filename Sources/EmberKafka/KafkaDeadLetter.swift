/// Dead-letter records: the original value bytes unchanged, plus headers saying why.
public enum KafkaDeadLetter {
    public static let errorClassHeader = "ember-error-class"
    public static let errorMessageHeader = "ember-error-message"
    public static let sourceTopicHeader = "ember-source-topic"
    public static let sourcePartitionHeader = "ember-source-partition"
    public static let sourceOffsetHeader = "ember-source-offset"
    public static let attemptsHeader = "ember-attempts"

    /// The six headers Ember sets; a message re-failed from a dead-letter topic gets them replaced.
    public static let headerNames: Set<String> = [
        errorClassHeader, errorMessageHeader, sourceTopicHeader, sourcePartitionHeader, sourceOffsetHeader, attemptsHeader,
    ]

    /// Longest error message kept, in UTF-8 bytes.
    public static let maxErrorMessageBytes = 1024

    /// The dead-letter record for `message`: same key and value, the original headers
    /// (minus earlier `ember-*` dead-letter headers), then the six dead-letter headers.
    /// `errorClass` is one of DESIGN.md's classes (`invalid_event`, `media_invalid`, …).
    /// With `includingOriginal: false` the value is empty and only the six headers are
    /// set: the small dead letter for when the full one is refused (too large).
    public static func record(
        for message: KafkaMessage, topic: String, errorClass: String, errorMessage: String, attempts: Int,
        includingOriginal: Bool = true
    ) -> KafkaProducerRecord {
        var headers = includingOriginal ? message.headers.filter { !headerNames.contains($0.key) } : []
        headers.append(KafkaHeader(key: errorClassHeader, string: errorClass))
        headers.append(KafkaHeader(key: errorMessageHeader, string: truncated(errorMessage)))
        headers.append(KafkaHeader(key: sourceTopicHeader, string: message.topic))
        headers.append(KafkaHeader(key: sourcePartitionHeader, string: String(message.partition.rawValue)))
        headers.append(KafkaHeader(key: sourceOffsetHeader, string: String(message.offset.rawValue)))
        headers.append(KafkaHeader(key: attemptsHeader, string: String(attempts)))
        return KafkaProducerRecord(topic: topic, key: message.key, value: includingOriginal ? message.value : [], headers: headers)
    }

    /// Cuts at a character boundary so the header stays valid UTF-8.
    static func truncated(_ text: String) -> String {
        guard text.utf8.count > maxErrorMessageBytes else { return text }
        var result = ""
        for character in text {
            if result.utf8.count + character.utf8.count > maxErrorMessageBytes - 3 { break }
            result.append(character)
        }
        return result + "..."
    }
}
