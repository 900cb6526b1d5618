import EmberKafka
import EmberModel
import EmberPipeline
import Logging

/// One setting of `ember run` and `ember replay`. `Setting.all` is the only list of
/// settings: the loader reads it, the start-up log prints it, and the tests check
/// Config/ember.yaml and the README against it key by key.
struct Setting {
    /// How the start-up log shows a value that may hold a secret.
    enum Secret {
        case none
        /// Shown as `<redacted>` when set.
        case value
        /// librdkafka `name=value` entries: the ones `KafkaSecrets` names are redacted.
        case librdkafkaProperties
    }

    /// Dotted key, as written in the file and to `--set` (`pipeline.max_batch_size`).
    let key: String
    /// The operators' short environment variable, if any (`EMBER_GROUP_ID`), besides
    /// `environmentVariable` (which is already short for `kafka.brokers`, `log.level`).
    var alias: String? = nil
    /// What it does, its unit and its allowed values.
    let doc: String
    var secret = Secret.none
    /// How Config/ember.yaml writes the default when it is not `show(defaults)` (a
    /// machine-dependent default is written as "", which means "the default").
    var documentedDefault: String? = nil
    /// Reads the value when one is given (absent: the default stays) and checks it.
    let load: (inout WorkerConfiguration, ConfigurationLoader.Reader) throws(ConfigurationError) -> Void
    /// The value as the log shows it and the file writes it, unredacted.
    let show: (WorkerConfiguration) -> String

    /// `EMBER_` + the key upper-cased with dots as underscores.
    var environmentVariable: String { "EMBER_" + key.uppercased().replacingOccurrences(of: ".", with: "_") }

    /// The default as Config/ember.yaml writes it.
    var defaultValue: String { documentedDefault ?? show(WorkerConfiguration()) }
}

extension Setting {
    /// Longest duration any setting accepts, in seconds: one day. Large enough for any
    /// real timeout or interval, small enough that no conversion to nanoseconds,
    /// `Duration` or sample counts can overflow.
    static let maxSeconds = 86_400.0

    /// Every setting, in the order of Config/ember.yaml.
    static var all: [Setting] {
        [
            string("kafka.brokers", \.kafka.brokers, doc: "Bootstrap servers, host:port[,host:port...]."),
            string("kafka.group_id", \.kafka.groupID, alias: "EMBER_GROUP_ID", doc: "Consumer group; workers with the same id share the input partitions."),
            Setting(
                key: "kafka.properties",
                doc: "Any librdkafka property as name=value (a YAML list, or comma-separated in the environment); applied to consumer and producer.",
                secret: .librdkafkaProperties,
                load: { c, reader throws(ConfigurationError) in
                    if let properties = try reader.properties("kafka.properties") { c.kafka.properties = properties }
                },
                show: { c in c.kafka.properties.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",") }),

            string("topics.input", \.kafka.inputTopic, alias: "EMBER_INPUT_TOPIC", doc: "Topic of upload events."),
            string("topics.output", \.pipeline.outputTopic, alias: "EMBER_OUTPUT_TOPIC", doc: "Topic of output records."),
            string("topics.dead_letter", \.pipeline.deadLetterTopic, alias: "EMBER_DLQ_TOPIC", doc: "Topic of dead letters."),
            int("topics.create_partitions", \.kafka.createPartitions, 0...100_000,
                doc: "Create missing topics at start-up with this many partitions; 0: never create (a missing topic stops start-up)."),

            Setting(
                key: "model.directory", alias: "EMBER_MODEL_DIR",
                doc: "Model directory (manifest.json + safetensors); empty: $XDG_CACHE_HOME/ember/models/omni-small, else ~/.cache/ember/models/omni-small.",
                documentedDefault: "",
                load: { c, reader throws(ConfigurationError) in
                    if let value = reader.string("model.directory") {
                        c.modelDirectory = value.isEmpty ? WorkerConfiguration.defaultModelDirectory : value
                    }
                },
                show: { $0.modelDirectory }),
            int("model.threads", \.modelThreads, 1...256, doc: "Threads per embedding call (OpenBLAS runs one per call); embed_lanes × threads ≤ cores."),
            parsed("model.precision", \.modelPrecision, expected: "auto, fp32 or bf16",
                   doc: "auto | fp32 | bf16: text and audio linear layers in bf16 (auto: where the CPU has AVX512-BF16; bf16 on a CPU without it stops start-up); bf16 records' model ends in +bf16.",
                   parse: { PrecisionSetting(rawValue: $0.lowercased()) }, show: \.rawValue),
            bool("model.batch_invariant", \.batchInvariant,
                 doc: "Embed each item on its own so a replay reproduces the live run's records byte for byte; false packs each micro-batch into shared matrices."),
            Setting(
                key: "model.codebook",
                doc: "Semantic-ID codebook (.safetensors from ember codebook train) trained for this model; records then carry semantic_id and semantic_id_str. Empty: none.",
                load: { c, reader throws(ConfigurationError) in
                    if let value = reader.string("model.codebook") { c.codebook = value }
                },
                show: { $0.codebook }),
            parsed("model.semantic_id_disambiguation", \.semanticIDDisambiguation, expected: "none or item_hash",
                   doc: "none | item_hash: append a code 0-65535 hashed from item_id so colliding items get distinct semantic IDs.",
                   parse: { SemanticIDDisambiguation(rawValue: $0.lowercased()) }, show: \.rawValue),
            Setting(
                key: "model.head",
                doc: "Projection head (.safetensors from ember align train) applied after fusion; records then carry its model id (omni-small+<head>@<hash>) and matryoshka. Empty: none.",
                load: { c, reader throws(ConfigurationError) in
                    if let value = reader.string("model.head") { c.head = value }
                },
                show: { $0.head }),
            int("model.head_dims", \.headDims, 0...65_536,
                doc: "Matryoshka size of the head's output (one the head was trained for); 0: its largest."),

            bool("asr.enabled", \.asrEnabled,
                 doc: "Transcribe the speech of items without asr_text (the model's Whisper decoder) and embed the transcript as their asr_text; records carry asr_text, asr_language, asr_generated. omni-small's decoder is English-only."),
            number("asr.max_seconds", \.asrMaxSeconds, 0.1...30, scale: 1, doc: "Audio transcribed per item, seconds (Whisper's window is 30)."),

            Setting(
                key: "media.root", doc: "file:// URIs and absolute paths are accepted only under this directory; empty: none.",
                load: { c, reader throws(ConfigurationError) in
                    if let value = reader.string("media.root") { c.media.uriPolicy.mediaRoot = value.isEmpty ? nil : value }
                },
                show: { $0.media.uriPolicy.mediaRoot ?? "" }),
            Setting(
                key: "media.allowed_hosts", doc: "http/https hosts allowed (.example.com admits subdomains); empty: any public host.",
                load: { c, reader throws(ConfigurationError) in
                    if let hosts = reader.list("media.allowed_hosts") { c.media.uriPolicy.allowedHosts = hosts.isEmpty ? nil : hosts }
                },
                show: { $0.media.uriPolicy.allowedHosts?.joined(separator: ",") ?? "" }),
            bool("media.block_private_addresses", \.media.uriPolicy.blockPrivateAddresses,
                 doc: "Refuse loopback and private addresses (link-local and cloud metadata addresses are always refused)."),
            int("media.max_frames", \.media.maxFrames, 1...1024, doc: "Keyframes sampled across the video (the cover is one more)."),
            seconds("media.max_audio_s", \.media.maxAudioSeconds, minimum: 0.001, doc: "Audio decoded per item, seconds."),
            Setting(
                key: "media.max_bytes_mb", doc: "Largest media file, MiB (1 to 1048576).",
                load: { c, reader throws(ConfigurationError) in
                    if let mb = try reader.int("media.max_bytes_mb", in: 1...1_048_576) { c.media.maxBytes = Int64(mb) << 20 }
                },
                show: { "\($0.media.maxBytes >> 20)" }),
            seconds("media.max_duration_s", \.media.maxDurationSeconds, minimum: 0.001, doc: "Longest video, seconds."),
            seconds("media.open_timeout_s", \.media.openTimeoutSeconds, minimum: 0.001, doc: "Time to open a media URI, seconds."),
            seconds("media.read_timeout_s", \.media.readTimeoutSeconds, minimum: 0.001, doc: "Longest wait for the next byte, seconds."),
            seconds("media.total_timeout_s", \.media.totalTimeoutSeconds, minimum: 0.001, doc: "Time to fetch and decode one item's media, seconds."),

            parsed("log.level", \.logLevel, expected: "one of trace, debug, info, notice, warning, error, critical",
                   doc: "trace|debug|info|notice|warning|error|critical.", parse: { Logger.Level(rawValue: $0.lowercased()) }, show: \.rawValue),
            seconds("log.metrics_interval_s", \.pipeline.metricsIntervalSeconds, minimum: 0, doc: "Seconds between metrics lines; 0 turns them off."),

            int("metrics.prometheus_port", \.prometheusPort, 0...65535, doc: "Serve Prometheus text at http://HOST:PORT/metrics; 0: no endpoint."),
            string("metrics.prometheus_host", \.prometheusHost, doc: "Address the Prometheus endpoint listens on."),

            seconds("health.stall_timeout_s", \.healthStallSeconds, minimum: 1,
                    doc: "/healthz (on the metrics port) fails when a pipeline thread has been busy on one poll, item or batch longer than this, seconds; keep it above media.total_timeout_s."),
            bool("tracing.propagate", \.pipeline.propagateTraceContext,
                 doc: "Carry W3C traceparent/tracestate from input events to output records and dead letters, with a span per stage (consume, decode, embed, produce)."),

            int("pipeline.decode_concurrency", \.pipeline.decodeConcurrency, 1...256, doc: "Items fetched and decoded at once."),
            int("pipeline.embed_lanes", \.pipeline.embedLanes, 1...256, doc: "Embedding threads, each with its own items (one per core)."),
            bool("pipeline.lend_idle_cores", \.pipeline.lendIdleCores,
                 doc: "A lane that takes an item while other lanes are idle embeds it with their threads too (lower latency when the worker is not saturated; same vectors)."),
            int("pipeline.embed_queue_capacity", \.pipeline.embedQueueCapacity, 1...100_000, doc: "Decoded items waiting for the model."),
            int("pipeline.max_batch_size", \.pipeline.maxBatchSize, 1...4096, doc: "Items per model call."),
            milliseconds("pipeline.max_batch_wait_ms", \.pipeline.maxBatchWaitSeconds, doc: "Wait to fill a batch once one item is ready, ms."),
            int("pipeline.max_in_flight", \.pipeline.maxInFlight, 1...1_000_000, doc: "Pause consuming at this many unfinished items..."),
            int("pipeline.resume_below", \.pipeline.resumeBelow, 1...1_000_000, doc: "...and resume below this many (at most pipeline.max_in_flight)."),
            int("pipeline.max_attempts", \.pipeline.maxAttempts, 1...1000, doc: "Tries for transient media failures before dead-lettering."),
            milliseconds("pipeline.retry_backoff_ms", \.pipeline.retryBackoffSeconds, doc: "First retry delay, doubled per attempt, ms."),
            milliseconds("pipeline.max_retry_backoff_ms", \.pipeline.maxRetryBackoffSeconds, doc: "Longest retry delay, ms (at least pipeline.retry_backoff_ms)."),
            seconds("pipeline.drain_timeout_s", \.pipeline.drainTimeoutSeconds, minimum: 0, doc: "On SIGTERM, time for in-flight items to finish, seconds."),

            parsed("output.format", \.pipeline.outputFormat, expected: "json or protobuf",
                   doc: "json | protobuf (schema Config/ember_record.proto) serialization of output records.",
                   parse: { RecordFormat(rawValue: $0.lowercased()) }, show: \.rawValue),
            parsed("output.encoding", \.pipeline.outputEncoding, expected: "one of f32, f16, int8, binary",
                   doc: "f32 | f16 | int8 (per-vector scale) | binary (sign bits) encoding of output vectors.",
                   parse: { VectorEncoding(rawValue: $0.lowercased()) }, show: \.rawValue),
            bool("output.raw_vector", \.rawVector,
                 doc: "With model.head, records also carry the fused vector before the head (raw_embedding, raw_dim, raw_model)."),
        ]
    }

    /// The setting for a key.
    static func named(_ key: String) -> Setting? { all.first { $0.key == key } }

    // MARK: kinds of settings

    static func string(_ key: String, _ path: WritableKeyPath<WorkerConfiguration, String>, alias: String? = nil, doc: String) -> Setting {
        Setting(
            key: key, alias: alias, doc: doc + " Must not be empty.",
            load: { c, reader throws(ConfigurationError) in
                guard let value = reader.string(key) else { return }
                guard !value.isEmpty else { throw ConfigurationError("\(key) must not be empty") }
                c[keyPath: path] = value
            },
            show: { $0[keyPath: path] })
    }

    static func parsed<T>(
        _ key: String, _ path: WritableKeyPath<WorkerConfiguration, T>, alias: String? = nil, expected: String, doc: String,
        parse: @escaping (String) -> T?, show: @escaping (T) -> String
    ) -> Setting {
        Setting(
            key: key, alias: alias, doc: doc,
            load: { c, reader throws(ConfigurationError) in
                if let value = try reader.parsed(key, expected: expected, parse) { c[keyPath: path] = value }
            },
            show: { show($0[keyPath: path]) })
    }

    static func bool(_ key: String, _ path: WritableKeyPath<WorkerConfiguration, Bool>, doc: String) -> Setting {
        parsed(key, path, expected: "true or false", doc: doc, parse: { Bool($0.lowercased()) }, show: { "\($0)" })
    }

    static func int(_ key: String, _ path: WritableKeyPath<WorkerConfiguration, Int>, _ range: ClosedRange<Int>, doc: String) -> Setting {
        Setting(
            key: key, doc: "\(doc) \(range.lowerBound) to \(range.upperBound).",
            load: { c, reader throws(ConfigurationError) in
                if let value = try reader.int(key, in: range) { c[keyPath: path] = value }
            },
            show: { "\($0[keyPath: path])" })
    }

    /// A duration written in seconds, from `minimum` to `maxSeconds`.
    static func seconds(_ key: String, _ path: WritableKeyPath<WorkerConfiguration, Double>, minimum: Double, doc: String) -> Setting {
        number(key, path, minimum...maxSeconds, scale: 1, doc: doc)
    }

    /// A duration written in milliseconds (stored in seconds), from 0 to `maxSeconds`.
    static func milliseconds(_ key: String, _ path: WritableKeyPath<WorkerConfiguration, Double>, doc: String) -> Setting {
        number(key, path, 0...(maxSeconds * 1000), scale: 1000, doc: doc)
    }

    /// A number written as `stored × scale`, within `range` as written.
    private static func number(
        _ key: String, _ path: WritableKeyPath<WorkerConfiguration, Double>, _ range: ClosedRange<Double>, scale: Double, doc: String
    ) -> Setting {
        Setting(
            key: key, doc: "\(doc) \(format(range.lowerBound)) to \(format(range.upperBound)).",
            load: { c, reader throws(ConfigurationError) in
                if let value = try reader.double(key, in: range) { c[keyPath: path] = value / scale }
            },
            // Rounded to a millionth of the unit written: 1.001 s shows as 1001 ms.
            show: { format(($0[keyPath: path] * scale * 1e6).rounded() / 1e6) })
    }

    /// `30` rather than `30.0`; fractions as Swift prints them.
    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : "\(value)"
    }
}
