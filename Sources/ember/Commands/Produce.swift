import ArgumentParser
import EmberKafka
import Foundation

/// `ember produce`: sends each line of a file (or stdin) as one message, for feeding
/// events by hand and re-driving dead letters. Waits for every acknowledgement.
struct Produce: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send each line of a file (or stdin) as one message to a topic.")

    @Option(help: "Kafka bootstrap servers.") var brokers = "127.0.0.1:9092"
    @Option(help: "Topic to send to.") var topic = "video.uploaded"
    @Argument(help: "File with one message per line; - or absent for stdin.") var file: String?

    func run() throws {
        let text: String
        if let file, file != "-" {
            guard let contents = FileManager.default.contents(atPath: file) else {
                throw ValidationError("cannot read \(file)")
            }
            text = String(decoding: contents, as: UTF8.self)
        } else {
            text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        }
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(bootstrapServers: brokers))
        let failures = FailureList()
        var sent = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            try producer.send(KafkaProducerRecord(topic: topic, key: nil, value: Array(line.utf8), headers: [])) { result in
                if case .failure(let error) = result { failures.append("\(error)") }
            }
            sent += 1
        }
        try producer.flush(timeout: .seconds(30))
        try producer.close(timeout: .seconds(5))
        let failed = failures.all
        print("sent \(sent - failed.count) of \(sent) messages to \(topic)")
        if let first = failed.first { throw ValidationError("\(failed.count) deliveries failed, first: \(first)") }
    }
}

/// Delivery failures reported on the producer's polling thread.
private final class FailureList: @unchecked Sendable {
    private let lock = NSLock()
    private var failures: [String] = []
    func append(_ failure: String) { lock.withLock { failures.append(failure) } }
    var all: [String] { lock.withLock { failures } }
}
