import ArgumentParser
import EmberKafka
import EmberModel
import EmberPipeline
import Foundation

/// `ember inspect`: reads a topic from its beginning to its current end and prints one
/// line per record: output records as item, dimension, norm and modalities; dead
/// letters as their class and message; anything else as its size.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a summary of every record of an output or dead-letter topic.")

    @Option(help: "Kafka bootstrap servers.") var brokers = "127.0.0.1:9092"
    @Argument(help: "Topic to read.") var topic: String
    @Flag(help: "Print one JSON object per record instead of a summary line.") var json = false

    func run() throws {
        var replay = KafkaReplayConfiguration(bootstrapServers: brokers, topic: topic, start: .beginning)
        replay.clientID = "ember-inspect"
        let reader = try KafkaReplay(configuration: replay)
        var counts: [String: Int] = [:]
        while !reader.isFinished {
            for message in try reader.poll(timeout: .milliseconds(500)) {
                let (kind, line) = Self.describe(message)
                counts[kind, default: 0] += 1
                print(json ? Self.jsonLine(message) : line)
            }
        }
        let summary = counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        print("\(topic): \(summary.isEmpty ? "empty" : summary)")
    }

    /// The value as JSON: protobuf records are converted, everything else printed as is.
    static func jsonLine(_ message: KafkaMessage) -> String {
        let contentType = message.header("content-type").map { String(decoding: $0, as: UTF8.self) }
        if RecordFormat(contentType: contentType) == .protobuf, let record = try? RecordFormat.protobuf.decode(message.value),
            let bytes = try? record.jsonBytes()
        {
            return String(decoding: bytes, as: UTF8.self)
        }
        return String(decoding: message.value, as: UTF8.self)
    }

    static func describe(_ message: KafkaMessage) -> (kind: String, line: String) {
        let position = "\(message.partition):\(message.offset)"
        if let errorClass = message.header(KafkaDeadLetter.errorClassHeader).map({ String(decoding: $0, as: UTF8.self) }) {
            let reason = message.header(KafkaDeadLetter.errorMessageHeader).map { String(decoding: $0, as: UTF8.self) } ?? ""
            return ("dead letters", "\(position) dead letter \(errorClass): \(reason)")
        }
        let contentType = message.header("content-type").map { String(decoding: $0, as: UTF8.self) }
        if let format = RecordFormat(contentType: contentType), let record = try? format.decode(message.value), let vector = record.vector {
            let norm = vector.reduce(0) { $0 + $1 * $1 }.squareRoot()
            let m = record.modalities
            return (
                "embeddings",
                "\(position) \(record.itemID) \(record.model) dim=\(record.dim) \(record.dtype.rawValue) norm=\(String(format: "%.4f", norm)) frames=\(m.visionFrames) tokens=\(m.textTokens) audio_s=\(m.audioSeconds)\(record.semanticIDString.map { " semantic_id=\($0)" } ?? "")\(record.asrGenerated == true ? " asr[\(record.asrLanguage ?? "")]=\"\(record.asrText ?? "")\"" : "")"
            )
        }
        return ("other records", "\(position) \(message.value.count) bytes")
    }
}
