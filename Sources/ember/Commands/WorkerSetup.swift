import EmberKafka
import EmberModel
import EmberPipeline
import Foundation
import Logging
import ServiceLifecycle

/// Start-up shared by `ember run` and `ember replay`: each step checks one thing a
/// worker needs and fails with a message that says what to fix.
struct WorkerSetup {
    let configuration: WorkerConfiguration
    let logger: Logger

    /// Loads the model (the slowest and most likely step to fail on a new machine).
    func loadProcessor() throws -> MediaModelProcessor {
        let started = ContinuousClock.now
        let precision: ComputePrecision
        do {
            precision = try ModelPrecision.resolve(configuration.modelPrecision)
        } catch {
            throw StartupError("model.precision=\(configuration.modelPrecision.rawValue): \(error)")
        }
        let engine: EmbeddingEngine
        do {
            // The engine leaves OpenBLAS's process-wide pool alone: the worker sets it, once, to
            // one thread; each embed call splits its own work over `model.threads` threads, or
            // over the idle lanes' threads too (`pipeline.lend_idle_cores`), so the engine is
            // sized for all lanes' threads.
            BLASThreads.count = 1
            let lanes = configuration.pipeline.lendIdleCores ? configuration.pipeline.embedLanes : 1
            engine = try EmbeddingEngine(
                modelDirectory: URL(fileURLWithPath: configuration.modelDirectory), threads: configuration.modelThreads * lanes,
                precision: precision, logger: logger)
        } catch {
            throw StartupError("cannot load the model from \(configuration.modelDirectory): \(error) (fetch it with Ops/model-fetch, or set model.directory / EMBER_MODEL_DIR)")
        }
        var processor = try MediaModelProcessor(
            engine: engine, media: configuration.media, batchInvariant: configuration.batchInvariant, threadsPerLane: configuration.modelThreads)
        processor.head = try appliedHead(for: engine)
        processor.semanticIDs = try semanticIDAssigner(modelID: processor.modelID, dim: processor.outputDim)
        processor.speech = try speechTranscription(for: engine)
        // EmberModel logs the towers and scratch size; this adds the media front end's part.
        logger.info("model ready", metadata: ["load_time": "\(ContinuousClock.now - started)", "batch_invariant": "\(configuration.batchInvariant)"])
        return processor
    }

    /// The ASR step when `asr.enabled`; a model directory without the decoder stops start-up.
    func speechTranscription(for engine: EmbeddingEngine) throws -> SpeechTranscription? {
        guard configuration.asrEnabled else { return nil }
        guard let encoder = engine.audio, engine.manifest.towers.text != nil else {
            throw StartupError("asr.enabled=true: the model has no audio or no text tower")
        }
        do {
            let transcriber = try SpeechTranscriber(
                modelDirectory: URL(fileURLWithPath: configuration.modelDirectory), manifest: engine.manifest, encoder: encoder,
                options: TranscriptionOptions(maxSeconds: configuration.asrMaxSeconds))
            logger.info("speech transcription on", metadata: [
                "multilingual": "\(transcriber.vocabulary.multilingual)", "max_seconds": "\(configuration.asrMaxSeconds)"])
            return SpeechTranscription(transcriber: transcriber, threads: configuration.modelThreads, logger: logger)
        } catch {
            throw StartupError("asr.enabled=true: cannot load the speech decoder from \(configuration.modelDirectory): \(error)")
        }
    }

    /// Checks the broker answers and the topics exist, creating missing ones when
    /// `topics.create_partitions` > 0. Returns the admin client (readiness keeps asking it).
    @discardableResult
    func checkTopics(_ topics: [String]) throws -> KafkaAdmin {
        let admin: KafkaAdmin
        let existing: [String: Int]
        do {
            admin = try KafkaAdmin(bootstrapServers: configuration.kafka.brokers, properties: configuration.kafka.properties, logger: logger)
            existing = try admin.partitionCounts(timeout: .seconds(15))
        } catch {
            throw StartupError("cannot reach the Kafka brokers at \(configuration.kafka.brokers): \(error)")
        }
        let missing = topics.filter { existing[$0] == nil }
        guard !missing.isEmpty else { return admin }
        guard configuration.kafka.createPartitions > 0 else {
            throw StartupError("topics do not exist: \(missing.joined(separator: ", ")) (create them, or set topics.create_partitions)")
        }
        do {
            try admin.ensureTopics(missing.map { KafkaTopicSpec(name: $0, partitions: configuration.kafka.createPartitions) })
        } catch {
            throw StartupError("cannot create topics \(missing.joined(separator: ", ")): \(error)")
        }
        logger.info("created topics", metadata: ["topics": "\(missing)", "partitions": "\(configuration.kafka.createPartitions)"])
        return admin
    }

    /// Starts the metrics and health endpoint when `metrics.prometheus_port` is set. Call
    /// before anything creates a metric: it bootstraps swift-metrics.
    func startMetricsEndpoint(health: WorkerHealth) async throws -> MetricsServer? {
        guard configuration.prometheusPort > 0 else { return nil }
        do {
            return try await MetricsServer.bootstrap(
                host: configuration.prometheusHost, port: UInt16(configuration.prometheusPort), health: health, logger: logger)
        } catch {
            throw StartupError("\(error)")
        }
    }

    /// Runs the pipeline from `input` to a new producer under a `ServiceGroup` until it
    /// finishes or SIGTERM/SIGINT has drained it, then closes the producer. Returns
    /// the pipeline for its totals.
    @discardableResult
    func runPipeline(
        input: any PipelineInput, processor: MediaModelProcessor, health: WorkerHealth? = nil
    ) async throws -> EmbeddingPipeline<MediaModelProcessor> {
        let producer = try makeProducer()
        let pipeline = try EmbeddingPipeline(
            configuration: configuration.pipeline, input: input, output: producer, processor: processor, logger: logger)
        health?.watch(pipeline.heartbeats)
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(
                    service: PipelineService(pipeline: pipeline) { health?.drainStarted() },
                    successTerminationBehavior: .gracefullyShutdownGroup)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
        try producer.close(timeout: .seconds(10))
        return pipeline
    }

    func makeProducer() throws -> KafkaProducer {
        var producer = KafkaProducerConfiguration(bootstrapServers: configuration.kafka.brokers)
        producer.clientID = "ember-\(configuration.kafka.groupID)"
        // Dead letters carry the original event, which may be up to 1 MiB plus headers.
        producer.properties = ["message.max.bytes": "2097152"].merging(configuration.kafka.properties) { $1 }
        return try KafkaProducer(configuration: producer, logger: logger)
    }

    func makeConsumer() throws -> KafkaConsumer {
        var consumer = KafkaConsumerConfiguration(
            bootstrapServers: configuration.kafka.brokers, groupID: configuration.kafka.groupID,
            topics: [configuration.kafka.inputTopic])
        consumer.clientID = "ember-\(configuration.kafka.groupID)"
        // One poll admits at most this many messages, so the in-flight window overshoots
        // its pause mark by little before the pause takes effect.
        consumer.maxMessagesPerPoll = max(1, configuration.pipeline.maxInFlight / 4)
        consumer.properties = configuration.kafka.properties
        return try KafkaConsumer(configuration: consumer, logger: logger)
    }
}

/// A start-up check failed; the message says what to fix.
struct StartupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
