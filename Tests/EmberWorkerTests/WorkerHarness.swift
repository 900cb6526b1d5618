import EmberKafka
import EmberModel
import EmberPipeline
import Foundation
import Testing

/// Runs the real `ember` executable against the test broker with generated media.
enum WorkerHarness {
    static let brokers = ProcessInfo.processInfo.environment["EMBER_TEST_BROKERS"]
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static var modelDirectory: String { URL.defaultModelDirectory.path }
    static var isAvailable: Bool {
        brokers != nil && FileManager.default.fileExists(atPath: modelDirectory + "/manifest.json")
    }

    /// `EMBER_BINARY` (Ops/test builds a release one: the model is slow in debug), else
    /// the debug build next to the test bundle.
    static var binary: String {
        if let path = ProcessInfo.processInfo.environment["EMBER_BINARY"] { return path }
        return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("ember").path
    }

    /// Sample media and events from Ops/samples, generated once per process.
    struct Samples {
        let directory: String
        let events: [String]
        let badEvents: [String]
        var mediaRoot: String { directory + "/media" }
    }

    private static let samplesLock = NSLock()
    nonisolated(unsafe) private static var cached: Samples?

    static func samples(count: Int = 50) throws -> Samples {
        samplesLock.lock()
        defer { samplesLock.unlock() }
        if let cached { return cached }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ember-worker-samples-\(count)").path
        let process = Process()
        process.executableURL = repository.appendingPathComponent("Ops/samples")
        process.arguments = [directory, String(count)]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw HarnessError("Ops/samples failed") }
        func lines(_ name: String) throws -> [String] {
            try String(contentsOfFile: directory + "/" + name, encoding: .utf8).split(separator: "\n").map(String.init)
        }
        let samples = Samples(directory: directory, events: try lines("events.jsonl"), badEvents: try lines("bad-events.jsonl"))
        cached = samples
        return samples
    }

    /// Unique topics for one test.
    struct Topics {
        let input: String
        let output: String
        let deadLetter: String
        let group: String

        init(_ name: String) {
            let id = UUID().uuidString.prefix(8).lowercased()
            input = "\(name)-\(id).in"
            output = "\(name)-\(id).out"
            deadLetter = "\(name)-\(id).dlq"
            group = "\(name)-\(id)"
        }
    }

    static func createTopics(_ topics: Topics, partitions: Int) throws {
        let admin = try KafkaAdmin(bootstrapServers: brokers!)
        try admin.ensureTopics([
            KafkaTopicSpec(name: topics.input, partitions: partitions),
            KafkaTopicSpec(name: topics.output, partitions: 3),
            KafkaTopicSpec(name: topics.deadLetter, partitions: 1),
        ])
    }

    /// Sends `values` in order, spread over the partitions by key, and waits for the acks.
    static func produce(_ values: [String], to topic: String) throws {
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(bootstrapServers: brokers!))
        for (index, value) in values.enumerated() {
            try producer.send(
                KafkaProducerRecord(topic: topic, key: Array("k\(index)".utf8), value: Array(value.utf8), headers: [])
            ) { result in
                if case .failure(let error) = result { Issue.record("produce failed: \(error)") }
            }
        }
        try producer.flush(timeout: .seconds(30))
        try producer.close(timeout: .seconds(5))
    }

    /// Every record of `topic` from the beginning to its current end.
    /// (With manual assignment, on the test broker unless `bootstrap` names another;
    /// gives up after 30 s with what it has.)
    static func readAll(_ topic: String, bootstrap: String? = nil) throws -> [KafkaMessage] {
        var configuration = KafkaReplayConfiguration(bootstrapServers: bootstrap ?? brokers!, topic: topic, start: .beginning)
        configuration.clientID = "ember-test-reader"
        let replay = try KafkaReplay(configuration: configuration)
        var messages: [KafkaMessage] = []
        let deadline = Date().addingTimeInterval(30)
        while !replay.isFinished && Date() < deadline { messages += try replay.poll(timeout: .milliseconds(200)) }
        return messages
    }

    /// The distinct item ids of output records (re-processed items appear twice).
    static func itemIDs(_ messages: [KafkaMessage]) -> Set<String> {
        Set(messages.compactMap { try? JSONDecoder().decode(EmbeddingRecord.self, from: Data($0.value)).itemID })
    }

    /// Reads `topic` until `done` holds for its records or the timeout passes.
    static func waitFor(
        _ topic: String, seconds: Double, while worker: WorkerProcess? = nil, _ done: ([KafkaMessage]) -> Bool
    ) throws -> [KafkaMessage] {
        let deadline = Date().addingTimeInterval(seconds)
        var messages: [KafkaMessage] = []
        while Date() < deadline {
            messages = try readAll(topic)
            if done(messages) { return messages }
            if let worker, !worker.isRunning { throw HarnessError("the worker exited early:\n\(worker.logTail())") }
            Thread.sleep(forTimeInterval: 1)
        }
        return messages
    }

    static func records(_ messages: [KafkaMessage]) throws -> [EmbeddingRecord] {
        try messages.map { try JSONDecoder().decode(EmbeddingRecord.self, from: Data($0.value)) }
    }

    /// The group's committed offsets for `partitions` partitions of `topic` (asked
    /// without joining the group: the consumer never polls).
    static func committedOffsets(group: String, topic: String, partitions: Int) throws -> [Int64?] {
        let consumer = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(bootstrapServers: brokers!, groupID: group, topics: [topic]))
        let list = (0..<partitions).map { KafkaTopicPartition(topic: topic, partition: KafkaPartition(Int32($0))) }
        let committed = try consumer.committedOffsets(for: list)
        return list.map { committed[$0].flatMap { $0?.rawValue } }
    }

    /// A loopback TCP port nothing listens on right now.
    static func freePort() -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return UInt16(bigEndian: address.sin_port)
    }

    /// The body of an HTTP GET, through curl.
    static func httpGet(_ url: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["curl", "-sf", "--max-time", "10", url]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw HarnessError("curl \(url) failed with \(process.terminationStatus)") }
        return String(decoding: data, as: UTF8.self)
    }

    /// Messages per partition of `topic`.
    static func endOffsets(_ messages: [KafkaMessage], partitions: Int) -> [Int64] {
        (0..<partitions).map { p in
            messages.filter { $0.partition.rawValue == Int32(p) }.map { $0.offset.rawValue + 1 }.max() ?? 0
        }
    }
}

/// One `ember run` or `ember replay` process with its log in a file.
final class WorkerProcess: @unchecked Sendable {
    let process = Process()
    let logPath: String

    init(
        _ arguments: [String], topics: WorkerHarness.Topics, samples: WorkerHarness.Samples, name: String,
        model: String = WorkerHarness.modelDirectory
    ) throws {
        logPath = FileManager.default.temporaryDirectory.appendingPathComponent("\(topics.group)-\(name).log").path
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: WorkerHarness.binary)
        process.arguments = arguments + [
            "--brokers", WorkerHarness.brokers!, "--input-topic", topics.input, "--output-topic", topics.output,
            "--dlq-topic", topics.deadLetter, "--model", model,
            "--set", "media.root=\(samples.mediaRoot)",
            "--set", "log.metrics_interval_s=2",
            "--set", "topics.create_partitions=0",
            "--set", "pipeline.drain_timeout_s=20",
            // tansu admits a member after about session.timeout.ms / 2.
            "--set", "kafka.properties=session.timeout.ms=6000,heartbeat.interval.ms=1000",
        ]
        let log = FileHandle(forWritingAtPath: logPath)
        process.standardOutput = log
        process.standardError = log
        try process.run()
    }

    static func run(
        group: String, topics: WorkerHarness.Topics, samples: WorkerHarness.Samples, name: String, settings: [String] = [],
        model: String = WorkerHarness.modelDirectory
    ) throws -> WorkerProcess {
        try WorkerProcess(["run", "--group-id", group] + settings.flatMap { ["--set", $0] }, topics: topics, samples: samples, name: name, model: model)
    }

    /// Waits until the log satisfies `condition` or the timeout passes.
    func waitForLog(seconds: Double, _ condition: (String) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition(log) { return true }
            Thread.sleep(forTimeInterval: 0.5)
        }
        return condition(log)
    }

    var isRunning: Bool { process.isRunning }

    /// SIGTERM, then wait for the graceful shutdown.
    func stop() -> Int32 {
        process.terminate()
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// SIGKILL: no drain, no commit.
    func kill() {
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    func wait() -> Int32 {
        process.waitUntilExit()
        return process.terminationStatus
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    func logTail(_ lines: Int = 30) -> String {
        log.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
