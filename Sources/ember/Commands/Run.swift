import ArgumentParser
import EmberPipeline
import Logging

/// `ember run`: the daemon. Consumes upload events, writes embeddings and dead
/// letters, until SIGTERM or SIGINT, then drains, commits and leaves the group.
/// Exit status: 0 after a graceful stop, 2 when start-up fails, 1 when a fatal error
/// (a dead producer, a dead-letter topic refusing everything) stopped the worker.
struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the worker: consume upload events, produce embeddings, until SIGTERM/SIGINT.")

    @OptionGroup var options: WorkerOptions

    func run() async throws {
        let configuration = try await options.loadConfiguration()
        let logger = Logger(label: "ember")
        logger.info("starting ember run", metadata: configuration.logDescription.mapValues { .string($0) })
        do {
            let setup = WorkerSetup(configuration: configuration, logger: logger)
            let health = WorkerHealth(stallSeconds: configuration.healthStallSeconds, needsGroup: true)
            let metricsEndpoint = try await setup.startMetricsEndpoint(health: health)
            defer { metricsEndpoint?.stop(); health.stop() }
            let processor = try setup.loadProcessor()
            health.modelLoaded(processor.modelID)
            let admin = try setup.checkTopics([configuration.kafka.inputTopic, configuration.pipeline.outputTopic, configuration.pipeline.deadLetterTopic])
            let consumer = try setup.makeConsumer()
            health.watchKafka(KafkaProbe(admin: admin, consumer: consumer, answeredNow: true))
            try await setup.runPipeline(input: consumer, processor: processor, health: health)
        } catch let error as StartupError {
            logger.critical("start-up failed", metadata: ["reason": "\(error)"])
            throw ExitCode(2)
        } catch {
            // A fatal Kafka error or a dead-letter topic that refuses everything: exit so
            // the group reassigns the partitions from the last acknowledged offsets.
            logger.critical("worker stopped by a fatal error", metadata: ["reason": "\(error)"])
            throw ExitCode(1)
        }
    }
}
