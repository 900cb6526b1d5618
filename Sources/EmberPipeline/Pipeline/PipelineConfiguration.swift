import EmberModel
import Foundation

/// Settings of the bounded pipeline. Defaults suit a 2-core machine running the
/// default model; every value can be set from the configuration file, the
/// environment or flags (see Config/ember.yaml).
public struct PipelineConfiguration: Sendable, Equatable {
    /// Output records go here. Default `item.embeddings`.
    public var outputTopic = "item.embeddings"
    /// Dead letters go here. Default `video.uploaded.dlq`.
    public var deadLetterTopic = "video.uploaded.dlq"
    /// Items fetched and decoded concurrently. Default 2.
    public var decodeConcurrency = 2
    /// Embedding threads ("lanes"), each running the model on its own items with its
    /// own scratch arena. One per core keeps every core busy when the model runs on one
    /// BLAS thread (`model.threads` 1): per-item work (attention, activations, depthwise
    /// convolutions) parallelizes too, which extra BLAS threads do not give. Default 2.
    public var embedLanes = 2
    /// A lane that takes an item while other lanes are idle embeds it with their cores too
    /// (the processor's `embed(_:lanes:)`), so an item arriving at a quiet worker is done
    /// in about half the time; under load every lane is busy and each uses its own. Results
    /// do not depend on it (the engine's are the same at any thread count). Default true.
    public var lendIdleCores = true
    /// Items waiting for the embedding stage. Default 32.
    public var embedQueueCapacity = 32
    /// Largest micro-batch handed to the model. Default 16.
    public var maxBatchSize = 16
    /// How long the embedding stage waits to fill a batch once it has one item. Default 0.02 s.
    public var maxBatchWaitSeconds = 0.02
    /// In-flight items at which the consumer pauses. Default 64.
    public var maxInFlight = 64
    /// In-flight items below which a paused consumer resumes. Default 32.
    public var resumeBelow = 32
    /// Attempts for an item whose media fetch fails transiently. Default 3.
    public var maxAttempts = 3
    /// First retry delay; doubles per attempt up to `maxRetryBackoffSeconds`. Default 1 s.
    public var retryBackoffSeconds = 1.0
    public var maxRetryBackoffSeconds = 30.0
    /// Encoding of output vectors (`output.encoding`). Default f16.
    public var outputEncoding = VectorEncoding.f16
    /// Serialization of output records (`output.format`). Default JSON.
    public var outputFormat = RecordFormat.json
    /// On shutdown, time allowed for in-flight items to finish before giving up on them
    /// (they are not committed and will be re-processed). Default 30 s.
    public var drainTimeoutSeconds = 30.0
    /// Seconds between metrics log lines; 0 disables them. Default 10.
    public var metricsIntervalSeconds = 10.0
    /// Carry W3C trace context (`traceparent`, `tracestate`) from input events to output
    /// records and dead letters, with a span per stage. Default true.
    public var propagateTraceContext = true

    public init() {}

    /// Seconds to wait before attempt `attempt + 1`: the backoff doubling from
    /// `retryBackoffSeconds`, capped at `maxRetryBackoffSeconds`.
    func retryDelay(afterAttempt attempt: Int) -> Double {
        min(retryBackoffSeconds * pow(2, Double(attempt - 1)), maxRetryBackoffSeconds)
    }

    /// Checks relations between values; returns a message naming the setting.
    public func validate() throws(ConfigurationError) {
        func require(_ condition: Bool, _ message: String) throws(ConfigurationError) {
            if !condition { throw ConfigurationError(message) }
        }
        try require(!outputTopic.isEmpty, "pipeline output topic must not be empty")
        try require(!deadLetterTopic.isEmpty, "pipeline dead-letter topic must not be empty")
        try require(outputTopic != deadLetterTopic, "output and dead-letter topics must differ")
        try require(decodeConcurrency >= 1, "decode concurrency must be at least 1, got \(decodeConcurrency)")
        try require(embedLanes >= 1, "embed lanes must be at least 1, got \(embedLanes)")
        try require(embedQueueCapacity >= 1, "embed queue capacity must be at least 1, got \(embedQueueCapacity)")
        try require(maxBatchSize >= 1, "max batch size must be at least 1, got \(maxBatchSize)")
        try require(maxBatchWaitSeconds >= 0, "max batch wait must not be negative")
        try require(maxInFlight >= 1, "max in-flight must be at least 1, got \(maxInFlight)")
        try require(resumeBelow >= 1 && resumeBelow <= maxInFlight, "resume-below must be between 1 and max in-flight (\(maxInFlight)), got \(resumeBelow)")
        try require(maxAttempts >= 1, "max attempts must be at least 1, got \(maxAttempts)")
        try require(retryBackoffSeconds >= 0 && maxRetryBackoffSeconds >= retryBackoffSeconds, "retry backoff must be non-negative and not above its maximum")
        try require(drainTimeoutSeconds >= 0, "drain timeout must not be negative")
    }
}

/// A configuration value that cannot work, with the setting named.
public struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
