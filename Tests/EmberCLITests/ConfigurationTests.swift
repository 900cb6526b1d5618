import Foundation
import Testing
import Yams
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
        #expect(fromFile.logDescription["kafka.properties"] == "linger.ms=5,sasl.password=<redacted>")

        let fromEnv = try await ConfigurationLoader.load(
            file: nil, environment: ["EMBER_KAFKA_PROPERTIES": "acks=all,compression.type=zstd"])
        #expect(fromEnv.kafka.properties == ["acks": "all", "compression.type": "zstd"])
    }

    @Test("malformed values are errors naming the key", arguments: [
        (["EMBER_PIPELINE_MAX_BATCH_SIZE": "lots"], "pipeline.max_batch_size must be an integer"),
        (["EMBER_LOG_LEVEL": "loud"], "log.level must be one of"),
        (["EMBER_OUTPUT_ENCODING": "bf16"], "output.encoding must be one of f32, f16, int8, binary"),
        (["EMBER_OUTPUT_FORMAT": "avro"], "output.format must be json or protobuf"),
        (["EMBER_MODEL_SEMANTIC_ID_DISAMBIGUATION": "counter"], "model.semantic_id_disambiguation must be none or item_hash"),
        (["EMBER_KAFKA_PROPERTIES": "linger.ms"], "kafka.properties entries must be name=value"),
        (["EMBER_PIPELINE_DECODE_CONCURRENCY": "0"], "pipeline.decode_concurrency must be between 1 and 256, got 0"),
        (["EMBER_PIPELINE_RESUME_BELOW": "65"], "pipeline.resume_below must be at most pipeline.max_in_flight (64)"),
        (["EMBER_PIPELINE_DRAIN_TIMEOUT_S": "1e11"], "pipeline.drain_timeout_s must be between 0 and 86400, got 1e11"),
        (["EMBER_KAFKA_GROUP_ID": ""], "kafka.group_id must not be empty"),
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

    // MARK: ranges (issue 9, item 8)

    @Test("every duration and count is range-checked, naming the key and the allowed range", arguments: [
        ("EMBER_PIPELINE_DRAIN_TIMEOUT_S", "pipeline.drain_timeout_s", "1e11"),
        ("EMBER_PIPELINE_DRAIN_TIMEOUT_S", "pipeline.drain_timeout_s", "inf"),
        ("EMBER_PIPELINE_DRAIN_TIMEOUT_S", "pipeline.drain_timeout_s", "-1"),
        ("EMBER_PIPELINE_MAX_BATCH_WAIT_MS", "pipeline.max_batch_wait_ms", "1e300"),
        ("EMBER_PIPELINE_RETRY_BACKOFF_MS", "pipeline.retry_backoff_ms", "nan"),
        ("EMBER_PIPELINE_MAX_RETRY_BACKOFF_MS", "pipeline.max_retry_backoff_ms", "1e20"),
        ("EMBER_LOG_METRICS_INTERVAL_S", "log.metrics_interval_s", "1e12"),
        ("EMBER_LOG_METRICS_INTERVAL_S", "log.metrics_interval_s", "-5"),
        ("EMBER_MEDIA_MAX_AUDIO_S", "media.max_audio_s", "1e15"),
        ("EMBER_MEDIA_MAX_DURATION_S", "media.max_duration_s", "1e300"),
        ("EMBER_MEDIA_OPEN_TIMEOUT_S", "media.open_timeout_s", "1e11"),
        ("EMBER_MEDIA_READ_TIMEOUT_S", "media.read_timeout_s", "0"),
        ("EMBER_MEDIA_TOTAL_TIMEOUT_S", "media.total_timeout_s", "-inf"),
        ("EMBER_MEDIA_MAX_BYTES_MB", "media.max_bytes_mb", "9000000000000"),
        ("EMBER_MEDIA_MAX_FRAMES", "media.max_frames", "1000000000"),
        ("EMBER_MODEL_THREADS", "model.threads", "100000"),
        ("EMBER_TOPICS_CREATE_PARTITIONS", "topics.create_partitions", "-1"),
        ("EMBER_PIPELINE_DECODE_CONCURRENCY", "pipeline.decode_concurrency", "100000"),
        ("EMBER_PIPELINE_EMBED_QUEUE_CAPACITY", "pipeline.embed_queue_capacity", "0"),
        ("EMBER_PIPELINE_MAX_BATCH_SIZE", "pipeline.max_batch_size", "1000000000"),
        ("EMBER_PIPELINE_MAX_IN_FLIGHT", "pipeline.max_in_flight", "0"),
        ("EMBER_PIPELINE_RESUME_BELOW", "pipeline.resume_below", "0"),
        ("EMBER_PIPELINE_MAX_ATTEMPTS", "pipeline.max_attempts", "1000000000"),
        ("EMBER_METRICS_PROMETHEUS_PORT", "metrics.prometheus_port", "70000"),
    ])
    func outOfRange(variable: String, key: String, value: String) async {
        do {
            _ = try await ConfigurationLoader.load(file: nil, environment: [variable: value])
            Issue.record("\(key)=\(value) was accepted")
        } catch {
            #expect(error.message.hasPrefix(key), "got: \(error.message)")
            #expect(error.message.contains("between"), "the message gives the allowed range; got: \(error.message)")
        }
    }

    // MARK: unknown keys (issue 9, item 10)

    @Test("a misplaced key in the file is an error naming it and the key meant")
    func misplacedKeyInFile() async throws {
        let file = try temporaryYAML("""
            topics:
              input: video.uploaded
              threads: 2
            """)
        do {
            _ = try await ConfigurationLoader.load(file: file, environment: [:])
            Issue.record("topics.threads was silently ignored")
        } catch {
            #expect(error.message.contains("topics.threads"), "got: \(error.message)")
            #expect(error.message.contains("model.threads"), "got: \(error.message)")
        }
    }

    @Test("unknown keys from the environment and --set are errors naming the closest key", arguments: [
        (["EMBER_PIPELINE_MAX_BATCH": "8"], [:], "EMBER_PIPELINE_MAX_BATCH", "EMBER_PIPELINE_MAX_BATCH_SIZE"),
        (["EMBER_GRUOP_ID": "g"], [:], "EMBER_GRUOP_ID", "EMBER_GROUP_ID"),
        (["EMBER_MODEL_BATCH_INVARIANCE": "false"], [:], "EMBER_MODEL_BATCH_INVARIANCE", "EMBER_MODEL_BATCH_INVARIANT"),
        ([:], ["pipeline.max_bach_size": "8"], "pipeline.max_bach_size", "pipeline.max_batch_size"),
        ([:], ["topics.threads": "2"], "topics.threads", "model.threads"),
    ] as [([String: String], [String: String], String, String)])
    func unknownKeys(environment: [String: String], flags: [String: String], unknown: String, suggestion: String) async {
        do {
            _ = try await ConfigurationLoader.load(file: nil, environment: environment, flags: flags)
            Issue.record("\(unknown) was silently ignored")
        } catch {
            #expect(error.message.contains(unknown), "got: \(error.message)")
            #expect(error.message.contains("did you mean \(suggestion)?"), "got: \(error.message)")
        }
    }

    @Test("EMBER_ variables of the Ops scripts and tests are not configuration")
    func foreignVariables() async throws {
        let c = try await ConfigurationLoader.load(file: nil, environment: [
            "EMBER_TOOLS_DIR": "/t", "EMBER_TEST_BROKERS": "127.0.0.1:1", "EMBER_BINARY": "/b", "EMBER_PREFIX": "/usr/local",
            "EMBER_STATE_DIR": "/s", "EMBER_VENV": "/v", "EMBER_TANSU": "/x", "EMBER_ALLOW_SKIPS": "1",
            "EMBER_TEST_BROKER_PORT": "19292", "EMBER_BENCH_BROKER_PORT": "1", "EMBER_BROKER_PORT": "1",
        ])
        #expect(c == WorkerConfiguration())
    }

    // MARK: secrets in the start-up log (issue 9, item 11)

    @Test("the start-up log redacts every librdkafka property that holds a secret", arguments: [
        "sasl.password", "sasl.oauthbearer.config", "sasl.oauthbearer.client.secret",
        "sasl.oauthbearer.client.credentials.client.secret", "sasl.oauthbearer.assertion.private.key.passphrase",
        "sasl.oauthbearer.assertion.private.key.pem", "ssl.key.password", "ssl.key.pem", "ssl_key",
        "ssl.keystore.password", "ssl.certificate.pem",
    ])
    func logRedactsSecrets(name: String) async throws {
        let c = try await ConfigurationLoader.load(
            file: nil, environment: ["EMBER_KAFKA_PROPERTIES": "\(name)=s3cr3t,sasl.username=ember"])
        let logged = c.logDescription.values.joined(separator: "\n")
        #expect(!logged.contains("s3cr3t"), "\(name) is logged in clear text")
        #expect(logged.contains("ember"))
    }

    // MARK: one settings table (issue 9, item 12)

    /// Config/ember.yaml's settings as dotted keys and their values as written (lists
    /// joined with commas), read with Yams independently of the loader.
    private func documentedSettings() throws -> [String: String] {
        let text = try String(contentsOfFile: documentedFile, encoding: .utf8)
        var settings: [String: String] = [:]
        func walk(_ key: String, _ node: Node) {
            if let mapping = node.mapping {
                for (name, value) in mapping { walk(key.isEmpty ? name.string ?? "?" : "\(key).\(name.string ?? "?")", value) }
            } else if let sequence = node.sequence {
                settings[key] = sequence.compactMap(\.string).joined(separator: ",")
            } else {
                settings[key] = node.string ?? ""
            }
        }
        if let root = try Yams.compose(yaml: text) { walk("", root) }
        return settings
    }

    @Test("Config/ember.yaml sets every setting of the table to its default, key by key and in order")
    func fileMatchesTheTable() throws {
        let documented = try documentedSettings()
        for setting in Setting.all {
            #expect(documented[setting.key] == setting.defaultValue, "\(setting.key): file \(documented[setting.key] ?? "nothing"), table \(setting.defaultValue)")
        }
        let keys = Setting.all.map(\.key)
        #expect(Set(documented.keys).subtracting(keys).sorted() == [], "in Config/ember.yaml but not in the table")
        #expect(try ConfigurationFile.keys(ofYAMLFile: documentedFile) == keys, "the file lists the settings in the table's order")
    }

    @Test("the start-up log shows every setting of the table, key by key")
    func logCoversTheTable() throws {
        var c = WorkerConfiguration()
        c.pipeline.drainTimeoutSeconds = 7
        c.pipeline.maxBatchWaitSeconds = 0.005
        let logged = c.logDescription
        #expect(logged.keys.sorted() == Setting.all.map(\.key).sorted())
        #expect(logged["pipeline.drain_timeout_s"] == "7")
        #expect(logged["pipeline.max_batch_wait_ms"] == "5")
        #expect(logged["model.directory"] == WorkerConfiguration.defaultModelDirectory)
    }

    @Test("every setting's environment variable, alias and --set key reach it", arguments: Setting.all.map(\.key))
    func everyKeyIsRead(key: String) async throws {
        let setting = try #require(Setting.named(key))
        // A value different from the default for each kind of setting.
        let value: String = switch setting.defaultValue {
        case "true": "false"
        case "false": "true"
        case "info": "debug"
        case "f16": "int8"
        case "json": "protobuf"
        case "none": "item_hash"
        case "auto": "fp32"
        case "": key == "kafka.properties" ? "linger.ms=5" : "/x"
        case let d where Int(d) != nil:
            key == "pipeline.max_in_flight" ? "65" : key == "pipeline.resume_below" ? "2" : key == "asr.max_seconds" ? "20" : "\(Int(d)! + 1)"
        default: "changed-\(setting.defaultValue)"
        }
        var variables = [setting.environmentVariable]
        if let alias = setting.alias { variables.append(alias) }
        for variable in variables {
            let fromEnvironment = try await ConfigurationLoader.load(file: nil, environment: [variable: value])
            #expect(fromEnvironment.logDescription[key] == value, "\(variable)")
        }
        let fromFlag = try await ConfigurationLoader.load(file: nil, environment: [:], flags: [key: value])
        #expect(fromFlag.logDescription[key] == value, "--set \(key)")
    }

    @Test("the README lists every short environment variable with its key")
    func readmeAliases() throws {
        let readme = try String(contentsOfFile: documentedFile.replacingOccurrences(of: "Config/ember.yaml", with: "README.md"), encoding: .utf8)
        for setting in Setting.all {
            guard let alias = setting.alias else { continue }
            #expect(readme.contains("| `\(alias)` | `\(setting.key)` |"), "\(alias)")
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
