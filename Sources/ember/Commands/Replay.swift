import ArgumentParser
import EmberKafka
import EmberPipeline
import Foundation
import Logging

/// `ember replay`: backfills a time or offset range of the input topic through the
/// same pipeline, with manual assignment (no consumer group, nothing committed). The
/// end is fixed when it starts, so it stops by itself; progress is in the metrics line.
struct Replay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-embed a time or offset range of the input topic, then stop.")

    @Option(help: "Start time: ISO 8601 (2026-11-28T10:00:00Z) or epoch milliseconds.") var from: String?
    @Option(help: "Start offsets instead of a time: PARTITION:OFFSET,… (only these partitions).") var fromOffsets: String?
    @Option(help: "End time (exclusive); default: the end of each partition when the replay starts.") var to: String?
    @Option(help: "Most items per second; default unlimited.") var rate: Double?
    @OptionGroup var options: WorkerOptions

    func validate() throws {
        guard (from == nil) != (fromOffsets == nil) else { throw ValidationError("give exactly one of --from and --from-offsets") }
        if let rate, !(rate > 0) { throw ValidationError("--rate must be positive") }
    }

    func run() async throws {
        let configuration = try await options.loadConfiguration()
        let logger = Logger(label: "ember")
        logger.info("starting ember replay", metadata: configuration.logDescription.mapValues { .string($0) })

        let start: KafkaReplayConfiguration.Start
        if let from {
            start = .timestamp(milliseconds: try Self.milliseconds(from, "--from"))
        } else {
            do {
                start = .offsets(try KafkaReplayConfiguration.parseOffsets(fromOffsets ?? ""))
            } catch {
                throw ValidationError("--from-offsets: \(error.message)")
            }
        }
        var replayConfiguration = KafkaReplayConfiguration(
            bootstrapServers: configuration.kafka.brokers, topic: configuration.kafka.inputTopic, start: start,
            end: try to.map { .timestamp(milliseconds: try Self.milliseconds($0, "--to")) } ?? .highWatermarks)
        replayConfiguration.properties = configuration.kafka.properties
        // Small polls keep the in-flight window and the rate limit tight.
        replayConfiguration.maxMessagesPerPoll = max(1, min(configuration.pipeline.maxInFlight / 4, rate.map { Int($0) } ?? .max))

        do {
            let setup = WorkerSetup(configuration: configuration, logger: logger)
            let health = WorkerHealth(stallSeconds: configuration.healthStallSeconds, needsGroup: false)
            let metricsEndpoint = try await setup.startMetricsEndpoint(health: health)
            defer { metricsEndpoint?.stop(); health.stop() }
            let processor = try setup.loadProcessor()
            health.modelLoaded(processor.modelID)
            let admin = try setup.checkTopics([configuration.pipeline.outputTopic, configuration.pipeline.deadLetterTopic])
            health.watchKafka(KafkaProbe(admin: admin, consumer: nil, answeredNow: true))
            let replay: KafkaReplay
            do {
                replay = try KafkaReplay(configuration: replayConfiguration, logger: logger)
            } catch {
                throw StartupError("cannot plan the replay of \(configuration.kafka.inputTopic): \(error)")
            }
            let planned = replay.ranges.map { "\($0.partition):\($0.start)..<\($0.end)" }.joined(separator: ",")
            logger.info("replay planned", metadata: ["ranges": "\(planned)", "messages": "\(replay.progress.plannedOffsets)"])
            let input = ReplayInput(replay, maxPerSecond: rate)
            let pipeline = try await setup.runPipeline(input: input, processor: processor, health: health)
            let progress = input.progress
            logger.info(
                "replay finished",
                metadata: [
                    "messages": "\(progress.messages)", "planned": "\(progress.plannedOffsets)",
                    "complete": "\(input.isExhausted)", "items_out": "\(pipeline.metrics.itemsOutTotal)",
                    "dead_letters": "\(pipeline.metrics.deadLettersTotal)",
                ])
            if !input.isExhausted { throw ExitCode(3) }
        } catch let error as StartupError {
            logger.critical("start-up failed", metadata: ["reason": "\(error)"])
            throw ExitCode(2)
        }
    }

    /// ISO 8601 or epoch milliseconds.
    static func milliseconds(_ text: String, _ option: String) throws -> Int64 {
        if let value = Int64(text) { return value }
        if let date = try? Date(text, strategy: .iso8601) { return Int64(date.timeIntervalSince1970 * 1000) }
        throw ValidationError("\(option) must be ISO 8601 (2026-11-28T10:00:00Z) or epoch milliseconds, got '\(text)'")
    }
}
