import EmberMedia
import EmberModel
import EmberPipeline
import Foundation
import Logging

/// Everything `ember run` and `ember replay` are configured with. Each value comes
/// from (highest first) a flag, an `EMBER_…` environment variable, the configuration
/// file, or the default documented here and in Config/ember.yaml.
struct WorkerConfiguration: Sendable, Equatable {
    struct Kafka: Sendable, Equatable {
        /// Bootstrap servers, `host:port[,host:port…]`.
        var brokers = "127.0.0.1:9092"
        /// Consumer group: workers with the same id share the input partitions.
        var groupID = "ember"
        var inputTopic = "video.uploaded"
        /// Extra librdkafka properties, applied to consumer and producer alike.
        var properties: [String: String] = [:]
        /// When > 0, missing topics are created at start-up with this many partitions.
        var createPartitions = 6
    }

    var kafka = Kafka()
    var modelDirectory = WorkerConfiguration.defaultModelDirectory
    /// OpenBLAS threads of the embedding stage. With 2 cores and 2 decode threads, 1.
    var modelThreads = 1
    /// Embed items one by one so replays reproduce records byte for byte (see
    /// `MediaModelProcessor`); false packs micro-batches into shared matrices.
    var batchInvariant = true
    var media = WorkerConfiguration.defaultMedia
    var logLevel = Logger.Level.info
    /// Serve Prometheus text on this port at `/metrics`; 0 turns the endpoint off.
    var prometheusPort = 0
    var prometheusHost = "0.0.0.0"
    var pipeline = PipelineConfiguration()

    /// The worker's media defaults: EmberMedia's, with loopback and private addresses
    /// refused (a worker fetching internal URLs for untrusted events is an SSRF hole).
    static var defaultMedia: MediaConfiguration { MediaConfiguration() }

    /// `$XDG_CACHE_HOME/ember/models/omni-small`, else `~/.cache/ember/models/omni-small`
    /// (where Ops/model-fetch writes).
    static var defaultModelDirectory: String { URL.defaultModelDirectory.path }

    /// Settings as `key=value` lines for the start-up log; secrets are redacted.
    var logDescription: [String: String] {
        var lines: [String: String] = [
            "kafka.brokers": kafka.brokers,
            "kafka.group_id": kafka.groupID,
            "topics.input": kafka.inputTopic,
            "topics.output": pipeline.outputTopic,
            "topics.dead_letter": pipeline.deadLetterTopic,
            "topics.create_partitions": "\(kafka.createPartitions)",
            "model.directory": modelDirectory,
            "model.threads": "\(modelThreads)",
            "model.batch_invariant": "\(batchInvariant)",
            "media.root": media.uriPolicy.mediaRoot ?? "(none: file URIs refused)",
            "media.allowed_hosts": media.uriPolicy.allowedHosts?.joined(separator: ",") ?? "(any public host)",
            "media.block_private_addresses": "\(media.uriPolicy.blockPrivateAddresses)",
            "media.max_frames": "\(media.maxFrames)",
            "media.max_audio_s": "\(media.maxAudioSeconds)",
            "media.max_bytes_mb": "\(media.maxBytes >> 20)",
            "media.max_duration_s": "\(media.maxDurationSeconds)",
            "media.timeouts_s": "open \(media.openTimeoutSeconds), read \(media.readTimeoutSeconds), total \(media.totalTimeoutSeconds)",
            "log.level": logLevel.rawValue,
            "metrics.prometheus": prometheusPort == 0 ? "off" : "\(prometheusHost):\(prometheusPort)",
            "pipeline.decode_concurrency": "\(pipeline.decodeConcurrency)",
            "pipeline.max_batch_size": "\(pipeline.maxBatchSize)",
            "pipeline.max_batch_wait_ms": "\(Int(pipeline.maxBatchWaitSeconds * 1000))",
            "pipeline.max_in_flight": "\(pipeline.maxInFlight)",
            "pipeline.resume_below": "\(pipeline.resumeBelow)",
            "pipeline.max_attempts": "\(pipeline.maxAttempts)",
            "pipeline.output_dtype": pipeline.outputDType.rawValue,
        ]
        for (name, value) in kafka.properties {
            lines["kafka.properties.\(name)"] = Self.isSecret(name) ? "<redacted>" : value
        }
        return lines
    }

    /// librdkafka properties that hold credentials.
    static func isSecret(_ property: String) -> Bool {
        let name = property.lowercased()
        return name.contains("password") || name.contains("secret") || name.hasSuffix(".key") || name.contains("token")
            || name.contains("jaas")
    }
}
