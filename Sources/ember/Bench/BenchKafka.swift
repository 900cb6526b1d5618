import ArgumentParser
import EmberKafka
import Foundation
import Synchronization

/// `ember bench kafka`: consume → produce pass-through throughput through Ember's
/// Swift layer (KafkaConsumer + KafkaProducer with per-message delivery callbacks and
/// offset tracking) against the same pass-through written on librdkafka's C API,
/// side by side in one run, reported as a ratio.
struct BenchKafka: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kafka", abstract: "Pass-through msg/s: Ember's Kafka layer vs the raw librdkafka C API.")

    @Option(help: "Bootstrap servers of the broker to use (topics are created with unique names).")
    var brokers = ProcessInfo.processInfo.environment["EMBER_KAFKA_BROKERS"] ?? "127.0.0.1:9092"
    @Option(help: "Messages to pass through per measurement.") var messages = 100_000
    @Option(help: "Value size in bytes.") var size = 1024
    @Option(help: "Partitions of the input and output topics.") var partitions = 3
    @Option(help: "Measurements of each implementation, alternating; the best of each is compared.") var rounds = 3

    func run() throws {
        let run = "bench-\(UUID().uuidString.prefix(8).lowercased())"
        let input = "\(run)-in"
        let admin = try KafkaAdmin(bootstrapServers: brokers, properties: ["log_level": "3"])
        try admin.ensureTopics([input, "\(run)-raw", "\(run)-swift"].map { KafkaTopicSpec(name: $0, partitions: partitions) })
        print("librdkafka \(Librdkafka.version), broker \(brokers), \(messages) messages of \(size) B, \(partitions) partitions")

        let fill = try fillInput(input)
        print(String(format: "fill (Swift producer)      %9.0f msg/s", Double(messages) / fill.seconds))

        // Alternate which implementation goes first so broker warm-up and memory growth
        // (tansu keeps everything in memory) do not favour one side.
        var rates: (raw: [Double], swift: [Double]) = ([], [])
        var cpu: (raw: [Double], swift: [Double]) = ([], [])
        for round in 1...rounds {
            var results: [String: (rate: Double, cpuMicroseconds: Double)] = [:]
            for side in round % 2 == 1 ? ["raw", "swift"] : ["swift", "raw"] {
                let cpuBefore = processCPUSeconds()
                let elapsed: Duration
                if side == "raw" {
                    elapsed = try KafkaRawPassThrough.run(
                        consumer: consumerConfiguration(input, group: "\(run)-raw-\(round)"), producer: producerConfiguration(),
                        output: "\(run)-raw", messages: messages)
                } else {
                    elapsed = try swiftPassThrough(input, output: "\(run)-swift", group: "\(run)-swift-\(round)")
                }
                results[side] = (Double(messages) / elapsed.seconds, (processCPUSeconds() - cpuBefore) * 1e6 / Double(messages))
            }
            let raw = results["raw"]!, swift = results["swift"]!
            rates.raw.append(raw.rate)
            rates.swift.append(swift.rate)
            cpu.raw.append(raw.cpuMicroseconds)
            cpu.swift.append(swift.cpuMicroseconds)
            print(String(
                format: "round %d: raw C %7.0f msg/s %5.2f µs CPU/msg   Ember %7.0f msg/s %5.2f µs CPU/msg   throughput ratio %.2f",
                round, raw.rate, raw.cpuMicroseconds, swift.rate, swift.cpuMicroseconds, swift.rate / raw.rate))
        }
        let ratios = zip(rates.swift, rates.raw).map { $0 / $1 }
        print(String(
            format: "throughput ratio Ember/raw: median %.2f, best-of-each %.2f (target >= 0.90)",
            median(ratios), rates.swift.max()! / rates.raw.max()!))
        print(String(
            format: "client CPU per message: raw C %.2f µs, Ember %.2f µs (medians; raw/Ember %.2f)",
            median(cpu.raw), median(cpu.swift), median(cpu.raw) / median(cpu.swift)))
    }

    private func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    /// User + system CPU time of this process (all threads, librdkafka's included).
    private func processCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) * 1e-6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    private func consumerConfiguration(_ topic: String, group: String) -> KafkaConsumerConfiguration {
        var configuration = KafkaConsumerConfiguration(bootstrapServers: brokers, groupID: group, topics: [topic])
        configuration.sessionTimeout = .seconds(6)
        configuration.heartbeatInterval = .seconds(1)
        configuration.properties = ["log_level": "3"]
        return configuration
    }

    private func producerConfiguration() -> KafkaProducerConfiguration {
        var configuration = KafkaProducerConfiguration(bootstrapServers: brokers)
        configuration.properties = ["log_level": "3"]
        return configuration
    }

    private func fillInput(_ topic: String) throws -> Duration {
        let producer = try KafkaProducer(configuration: producerConfiguration())
        let failures = Counter()
        let start = ContinuousClock.now
        for index in 0..<messages {
            var value = [UInt8](repeating: UInt8(truncatingIfNeeded: index), count: size)
            value.withUnsafeMutableBytes { $0.storeBytes(of: UInt64(index).littleEndian, as: UInt64.self) }
            try producer.send(KafkaProducerRecord(topic: topic, key: Array("item-\(index)".utf8), value: value)) { result in
                if case .failure = result { failures.increment() }
            }
        }
        try producer.flush(timeout: .seconds(120))
        let elapsed = ContinuousClock.now - start
        try producer.close(timeout: .seconds(5))
        if failures.value > 0 { throw ValidationError("\(failures.value) messages failed to fill the input topic") }
        return elapsed
    }

    /// The Swift layer as the pipeline uses it: poll, send with a delivery callback,
    /// mark the input done when the output is acknowledged.
    private func swiftPassThrough(_ input: String, output: String, group: String) throws -> Duration {
        let consumer = try KafkaConsumer(configuration: consumerConfiguration(input, group: group))
        let producer = try KafkaProducer(configuration: producerConfiguration())
        let delivered = Counter()
        let failures = Counter()
        var start: ContinuousClock.Instant?
        let giveUp = ContinuousClock.now.advanced(by: .seconds(300))
        while delivered.value + failures.value < messages {
            if ContinuousClock.now > giveUp { throw ValidationError("Ember pass-through did not finish in 300 s") }
            for event in try consumer.poll(timeout: .milliseconds(100)) {
                guard case .message(let message) = event else { continue }
                if start == nil { start = .now }
                let record = KafkaProducerRecord(topic: output, key: message.key, value: message.value, headers: message.headers)
                // Capture only the source position: the bytes are then freed on this thread.
                let source = message.topicPartition
                let offset = message.offset
                try producer.send(record) { result in
                    switch result {
                    case .success:
                        consumer.markDone(source, offset: offset)
                        delivered.increment()
                    case .failure:
                        failures.increment()
                    }
                }
            }
        }
        let elapsed = ContinuousClock.now - (start ?? .now)
        if failures.value > 0 { throw ValidationError("\(failures.value) Ember deliveries failed") }
        try consumer.close()
        try producer.close(timeout: .seconds(5))
        return elapsed
    }
}

/// A counter shared with delivery callbacks.
private final class Counter: Sendable {
    private let count = Atomic<Int>(0)
    var value: Int { count.load(ordering: .relaxed) }
    func increment() { count.add(1, ordering: .relaxed) }
}
