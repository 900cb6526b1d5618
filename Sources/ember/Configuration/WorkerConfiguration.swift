import EmberKafka
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
    /// Arithmetic of the embedding engine; `auto` is bf16 on CPUs with AVX512-BF16.
    var modelPrecision = PrecisionSetting.auto
    /// Embed items one by one so replays reproduce records byte for byte (see
    /// `MediaModelProcessor`); false packs micro-batches into shared matrices.
    var batchInvariant = true
    /// Semantic-ID codebook file; empty: records carry no semantic ID.
    var codebook = ""
    /// Whether semantic IDs get an extra, item-derived level to make them unique.
    var semanticIDDisambiguation = SemanticIDDisambiguation.none
    /// Projection head file (`ember align train`); empty: records carry the fused vector.
    var head = ""
    /// Matryoshka size of the head's output; 0: its largest.
    var headDims = 0
    /// With a head, records carry the fused vector too (`raw_embedding`).
    var rawVector = false
    /// Transcribe speech of items without `asr_text` (off: it costs more than the rest
    /// of an item's embedding; README "Speech transcription (ASR)").
    var asrEnabled = false
    /// Seconds of audio transcribed per item.
    var asrMaxSeconds = 30.0
    var media = WorkerConfiguration.defaultMedia
    var logLevel = Logger.Level.info
    /// Serve Prometheus text on this port at `/metrics`; 0 turns the endpoint off.
    var prometheusPort = 0
    var prometheusHost = "0.0.0.0"
    /// `/healthz` fails when a pipeline thread has been busy on one poll, item or batch
    /// longer than this (above `media.total_timeout_s`).
    var healthStallSeconds = 300.0
    var pipeline = PipelineConfiguration()

    /// The worker's media defaults: EmberMedia's, with loopback and private addresses
    /// refused (a worker fetching internal URLs for untrusted events is an SSRF hole).
    static var defaultMedia: MediaConfiguration { MediaConfiguration() }

    /// `$XDG_CACHE_HOME/ember/models/omni-small`, else `~/.cache/ember/models/omni-small`
    /// (where Ops/model-fetch writes).
    static var defaultModelDirectory: String { URL.defaultModelDirectory.path }

    /// Every setting (`Setting.all`) as `key: value` for the start-up log, secrets redacted.
    var logDescription: [String: String] {
        var lines: [String: String] = [:]
        for setting in Setting.all {
            switch setting.secret {
            case .none:
                lines[setting.key] = setting.show(self)
            case .value:
                lines[setting.key] = setting.show(self).isEmpty ? "" : KafkaSecrets.redacted
            case .librdkafkaProperties:
                lines[setting.key] = KafkaSecrets.redacting(kafka.properties).sorted { $0.key < $1.key }
                    .map { "\($0.key)=\($0.value)" }.joined(separator: ",")
            }
        }
        return lines
    }
}
