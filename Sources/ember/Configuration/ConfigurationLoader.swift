import Configuration
import EmberModel
import EmberPipeline
import Foundation
import Logging
import SystemPackage

/// Reads `WorkerConfiguration` through swift-configuration: flags over `EMBER_…`
/// environment variables over the YAML file over defaults. A present but malformed
/// value is an error naming its key, never silently replaced by the default.
enum ConfigurationLoader {
    /// Short environment names operators reach for first, mapped to the canonical
    /// `EMBER_<KEY>` form of the configuration key.
    static let environmentAliases: [String: String] = [
        "EMBER_GROUP_ID": "EMBER_KAFKA_GROUP_ID",
        "EMBER_INPUT_TOPIC": "EMBER_TOPICS_INPUT",
        "EMBER_OUTPUT_TOPIC": "EMBER_TOPICS_OUTPUT",
        "EMBER_DLQ_TOPIC": "EMBER_TOPICS_DEAD_LETTER",
        "EMBER_MODEL_DIR": "EMBER_MODEL_DIRECTORY",
    ]

    static func load(
        file: String?, environment: [String: String] = ProcessInfo.processInfo.environment,
        flags: [String: String] = [:]
    ) async throws(ConfigurationError) -> WorkerConfiguration {
        var environment = environment
        for (alias, canonical) in environmentAliases where environment[canonical] == nil {
            if let value = environment[alias] { environment[canonical] = value }
        }
        var providers: [any ConfigProvider] = [
            InMemoryProvider(
                name: "flags",
                values: Dictionary(uniqueKeysWithValues: flags.map { (AbsoluteConfigKey(ConfigKey($0.key)), ConfigValue(.string($0.value), isSecret: false)) })),
            EnvironmentVariablesProvider(environmentVariables: environment).prefixKeys(with: "ember"),
        ]
        if let file {
            guard FileManager.default.fileExists(atPath: file) else {
                throw ConfigurationError("configuration file \(file) does not exist")
            }
            do {
                providers.append(try await FileProvider<YAMLSnapshot>(filePath: FilePath(file)))
            } catch {
                throw ConfigurationError("cannot read configuration file \(file): \(error)")
            }
        }
        let reader = Reader(ConfigReader(providers: providers))

        var c = WorkerConfiguration()
        c.kafka.brokers = try reader.string("kafka.brokers", c.kafka.brokers)
        c.kafka.groupID = try reader.string("kafka.group_id", c.kafka.groupID)
        c.kafka.properties = try reader.properties("kafka.properties")
        c.kafka.inputTopic = try reader.string("topics.input", c.kafka.inputTopic)
        c.kafka.createPartitions = try reader.int("topics.create_partitions", c.kafka.createPartitions)
        c.pipeline.outputTopic = try reader.string("topics.output", c.pipeline.outputTopic)
        c.pipeline.deadLetterTopic = try reader.string("topics.dead_letter", c.pipeline.deadLetterTopic)
        c.modelDirectory = try reader.string("model.directory", c.modelDirectory)
        c.modelThreads = try reader.int("model.threads", c.modelThreads)
        c.batchInvariant = try reader.parsed("model.batch_invariant", c.batchInvariant, expected: "true or false") { Bool($0.lowercased()) }
        if c.modelThreads < 1 { throw ConfigurationError("model.threads must be at least 1, got \(c.modelThreads)") }
        c.media.uriPolicy.mediaRoot = try reader.string("media.root", c.media.uriPolicy.mediaRoot ?? "").nonEmpty
        c.media.uriPolicy.allowedHosts = try reader.list("media.allowed_hosts").nonEmpty ?? c.media.uriPolicy.allowedHosts
        c.media.uriPolicy.blockPrivateAddresses = try reader.parsed(
            "media.block_private_addresses", c.media.uriPolicy.blockPrivateAddresses, expected: "true or false"
        ) { Bool($0.lowercased()) }
        c.media.maxFrames = try reader.int("media.max_frames", c.media.maxFrames)
        c.media.maxAudioSeconds = try reader.double("media.max_audio_s", c.media.maxAudioSeconds)
        c.media.maxBytes = Int64(try reader.int("media.max_bytes_mb", Int(c.media.maxBytes >> 20))) << 20
        c.media.maxDurationSeconds = try reader.double("media.max_duration_s", c.media.maxDurationSeconds)
        c.media.openTimeoutSeconds = try reader.double("media.open_timeout_s", c.media.openTimeoutSeconds)
        c.media.readTimeoutSeconds = try reader.double("media.read_timeout_s", c.media.readTimeoutSeconds)
        c.media.totalTimeoutSeconds = try reader.double("media.total_timeout_s", c.media.totalTimeoutSeconds)
        if c.media.maxFrames < 1 { throw ConfigurationError("media.max_frames must be at least 1, got \(c.media.maxFrames)") }
        for (key, value) in [
            ("media.max_audio_s", c.media.maxAudioSeconds), ("media.max_duration_s", c.media.maxDurationSeconds),
            ("media.open_timeout_s", c.media.openTimeoutSeconds), ("media.read_timeout_s", c.media.readTimeoutSeconds),
            ("media.total_timeout_s", c.media.totalTimeoutSeconds), ("media.max_bytes_mb", Double(c.media.maxBytes)),
        ] where value <= 0 {
            throw ConfigurationError("\(key) must be positive, got \(value)")
        }
        c.logLevel = try reader.parsed("log.level", c.logLevel, expected: "one of trace, debug, info, notice, warning, error, critical") {
            Logger.Level(rawValue: $0.lowercased())
        }
        c.pipeline.metricsIntervalSeconds = try reader.double("log.metrics_interval_s", c.pipeline.metricsIntervalSeconds)
        c.prometheusPort = try reader.int("metrics.prometheus_port", c.prometheusPort)
        c.prometheusHost = try reader.string("metrics.prometheus_host", c.prometheusHost)
        if !(0...65535).contains(c.prometheusPort) {
            throw ConfigurationError("metrics.prometheus_port must be 0 (off) or a port number, got \(c.prometheusPort)")
        }
        c.pipeline.decodeConcurrency = try reader.int("pipeline.decode_concurrency", c.pipeline.decodeConcurrency)
        c.pipeline.embedQueueCapacity = try reader.int("pipeline.embed_queue_capacity", c.pipeline.embedQueueCapacity)
        c.pipeline.maxBatchSize = try reader.int("pipeline.max_batch_size", c.pipeline.maxBatchSize)
        c.pipeline.maxBatchWaitSeconds = try reader.double("pipeline.max_batch_wait_ms", c.pipeline.maxBatchWaitSeconds * 1000) / 1000
        c.pipeline.maxInFlight = try reader.int("pipeline.max_in_flight", c.pipeline.maxInFlight)
        c.pipeline.resumeBelow = try reader.int("pipeline.resume_below", c.pipeline.resumeBelow)
        c.pipeline.maxAttempts = try reader.int("pipeline.max_attempts", c.pipeline.maxAttempts)
        c.pipeline.retryBackoffSeconds = try reader.double("pipeline.retry_backoff_ms", c.pipeline.retryBackoffSeconds * 1000) / 1000
        c.pipeline.maxRetryBackoffSeconds = try reader.double("pipeline.max_retry_backoff_ms", c.pipeline.maxRetryBackoffSeconds * 1000) / 1000
        c.pipeline.drainTimeoutSeconds = try reader.double("pipeline.drain_timeout_s", c.pipeline.drainTimeoutSeconds)
        c.pipeline.outputDType = try reader.parsed("pipeline.output_dtype", c.pipeline.outputDType, expected: "f16 or f32") {
            EmbeddingDType(rawValue: $0.lowercased())
        }

        if c.kafka.brokers.isEmpty { throw ConfigurationError("kafka.brokers must not be empty") }
        if c.kafka.groupID.isEmpty { throw ConfigurationError("kafka.group_id must not be empty") }
        if c.kafka.inputTopic.isEmpty { throw ConfigurationError("topics.input must not be empty") }
        if c.kafka.inputTopic == c.pipeline.outputTopic || c.kafka.inputTopic == c.pipeline.deadLetterTopic {
            throw ConfigurationError("topics.input must differ from topics.output and topics.dead_letter")
        }
        try c.pipeline.validate()
        return c
    }

    /// Typed lookups that tell "absent" (default) from "present but malformed" (error).
    private struct Reader {
        let config: ConfigReader
        init(_ config: ConfigReader) { self.config = config }

        func string(_ key: String, _ defaultValue: String) throws(ConfigurationError) -> String {
            config.string(forKey: ConfigKey(key)) ?? defaultValue
        }

        func parsed<T>(_ key: String, _ defaultValue: T, expected: String, _ parse: (String) -> T?) throws(ConfigurationError) -> T {
            guard let raw = config.string(forKey: ConfigKey(key)) else { return defaultValue }
            guard let value = parse(raw.trimmingCharacters(in: .whitespaces)) else {
                throw ConfigurationError("\(key) must be \(expected), got '\(raw)'")
            }
            return value
        }

        func int(_ key: String, _ defaultValue: Int) throws(ConfigurationError) -> Int {
            try parsed(key, defaultValue, expected: "an integer") { Int($0) }
        }

        func double(_ key: String, _ defaultValue: Double) throws(ConfigurationError) -> Double {
            try parsed(key, defaultValue, expected: "a number") { Double($0).flatMap { $0.isFinite ? $0 : nil } }
        }

        /// A YAML list or a comma-separated value.
        func list(_ key: String) throws(ConfigurationError) -> [String] {
            // A YAML list keeps its entries whole (a property value may contain commas).
            let entries = config.stringArray(forKey: ConfigKey(key))
                ?? config.string(forKey: ConfigKey(key)).map { $0.split(separator: ",").map(String.init) } ?? []
            return entries.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }

        /// `name=value` entries, from a YAML list or a comma-separated environment value.
        func properties(_ key: String) throws(ConfigurationError) -> [String: String] {
            let entries = try list(key)
            var properties: [String: String] = [:]
            for entry in entries where !entry.trimmingCharacters(in: .whitespaces).isEmpty {
                guard let equals = entry.firstIndex(of: "="), equals != entry.startIndex else {
                    throw ConfigurationError("\(key) entries must be name=value, got '\(entry)'")
                }
                let name = entry[..<equals].trimmingCharacters(in: .whitespaces)
                properties[name] = String(entry[entry.index(after: equals)...]).trimmingCharacters(in: .whitespaces)
            }
            return properties
        }
    }
}

extension Collection {
    /// nil for an empty collection (an empty setting means "not set").
    fileprivate var nonEmpty: Self? { isEmpty ? nil : self }
}
