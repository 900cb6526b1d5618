import ArgumentParser
import EmberPipeline
import Logging
import ServiceLifecycle

/// `ember run`: the daemon. Consumes upload events, writes embeddings and dead
/// letters, until SIGTERM or SIGINT, then drains, commits and leaves the group.
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
            let processor = try setup.loadProcessor()
            try setup.checkTopics([configuration.kafka.inputTopic, configuration.pipeline.outputTopic, configuration.pipeline.deadLetterTopic])
            let producer = try setup.makeProducer()
            let consumer = try setup.makeConsumer()
            let pipeline = try EmbeddingPipeline(
                configuration: configuration.pipeline, input: consumer, output: producer, processor: processor, logger: logger)
            let group = ServiceGroup(
                configuration: .init(
                    services: [.init(service: PipelineService(pipeline: pipeline), successTerminationBehavior: .gracefullyShutdownGroup)],
                    gracefulShutdownSignals: [.sigterm, .sigint],
                    logger: logger))
            try await group.run()
            try producer.close(timeout: .seconds(10))
        } catch let error as StartupError {
            logger.critical("start-up failed", metadata: ["reason": "\(error)"])
            throw ExitCode(2)
        }
    }
}
