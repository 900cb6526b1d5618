import Foundation
import Testing
@testable import EmberPipeline
@testable import ember

@Suite("Worker configuration")
struct ConfigurationTests {
    /// Config/ember.yaml in this checkout.
    private var documentedFile: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Config/ember.yaml").path
    }

    private func temporaryYAML(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ember-\(UUID().uuidString).yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("Config/ember.yaml documents exactly the built-in defaults")
    func documentedDefaults() async throws {
        let fromFile = try await ConfigurationLoader.load(file: documentedFile, environment: [:])
        let builtIn = try await ConfigurationLoader.load(file: nil, environment: [:])
        #expect(fromFile == builtIn)
        #expect(builtIn == WorkerConfiguration())
    }

    @Test("environment overrides the file, flags override the environment")
    func precedence() async throws {
        let file = try temporaryYAML("""
            kafka:
              brokers: "file:9092"
              group_id: from-file
            pipeline:
              max_batch_size: 4
              decode_concurrency: 3
            """)
        let c = try await ConfigurationLoader.load(
            file: file,
            environment: ["EMBER_KAFKA_BROKERS": "env:9092", "EMBER_PIPELINE_MAX_BATCH_SIZE": "8"],
            flags: ["pipeline.max_batch_size": "12"])
        #expect(c.kafka.brokers == "env:9092")
        #expect(c.kafka.groupID == "from-file")
        #expect(c.pipeline.maxBatchSize == 12)
        #expect(c.pipeline.decodeConcurrency == 3)
    }

    @Test("the operators' short environment names work")
    func aliases() async throws {
        let c = try await ConfigurationLoader.load(file: nil, environment: [
            "EMBER_GROUP_ID": "g1", "EMBER_INPUT_TOPIC": "in", "EMBER_OUTPUT_TOPIC": "out",
            "EMBER_DLQ_TOPIC": "dlq", "EMBER_MODEL_DIR": "/models/x", "EMBER_LOG_LEVEL": "DEBUG",
        ])
        #expect(c.kafka.groupID == "g1")
        #expect(c.kafka.inputTopic == "in")
        #expect(c.pipeline.outputTopic == "out")
        #expect(c.pipeline.deadLetterTopic == "dlq")
        #expect(c.modelDirectory == "/models/x")
        #expect(c.logLevel == .debug)
    }

    @Test("librdkafka pass-through properties come from YAML lists and env; secrets are redacted")
    func passThrough() async throws {
        let file = try temporaryYAML("""
            kafka:
              properties:
                - "linger.ms=5"
                - "sasl.password=hunter2"
            """)
        let fromFile = try await ConfigurationLoader.load(file: file, environment: [:])
        #expect(fromFile.kafka.properties == ["linger.ms": "5", "sasl.password": "hunter2"])
        #expect(fromFile.logDescription["kafka.properties.sasl.password"] == "<redacted>")
        #expect(fromFile.logDescription["kafka.properties.linger.ms"] == "5")

        let fromEnv = try await ConfigurationLoader.load(
            file: nil, environment: ["EMBER_KAFKA_PROPERTIES": "acks=all,compression.type=zstd"])
        #expect(fromEnv.kafka.properties == ["acks": "all", "compression.type": "zstd"])
    }

    @Test("malformed values are errors naming the key", arguments: [
        (["EMBER_PIPELINE_MAX_BATCH_SIZE": "lots"], "pipeline.max_batch_size must be an integer"),
        (["EMBER_LOG_LEVEL": "loud"], "log.level must be one of"),
        (["EMBER_PIPELINE_OUTPUT_DTYPE": "bf16"], "pipeline.output_dtype must be f16 or f32"),
        (["EMBER_KAFKA_PROPERTIES": "linger.ms"], "kafka.properties entries must be name=value"),
        (["EMBER_PIPELINE_DECODE_CONCURRENCY": "0"], "decode concurrency must be at least 1"),
        (["EMBER_INPUT_TOPIC": "item.embeddings"], "topics.input must differ"),
    ])
    func malformed(environment: [String: String], message: String) async {
        do {
            _ = try await ConfigurationLoader.load(file: nil, environment: environment)
            Issue.record("expected an error containing '\(message)'")
        } catch {
            #expect(error.message.contains(message), "got: \(error.message)")
        }
    }

    @Test("a missing configuration file is an error")
    func missingFile() async {
        do {
            _ = try await ConfigurationLoader.load(file: "/nonexistent/ember.yaml", environment: [:])
            Issue.record("expected an error")
        } catch {
            #expect(error.message.contains("/nonexistent/ember.yaml"))
        }
    }
}
