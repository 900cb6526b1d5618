import Logging
import ServiceLifecycle

/// Runs an `EmbeddingPipeline` as a swift-service-lifecycle `Service`: it starts the
/// stage threads and, on graceful shutdown (SIGTERM/SIGINT through the
/// `ServiceGroup`), stops admitting, drains within the configured deadline, commits,
/// leaves the group and flushes.
public struct PipelineService<Processor: ItemProcessor>: Service {
    private let pipeline: EmbeddingPipeline<Processor>
    private let onDrain: @Sendable () -> Void

    /// `onDrain` runs when graceful shutdown begins, before the pipeline stops admitting
    /// (the worker uses it to fail its readiness probe).
    public init(pipeline: EmbeddingPipeline<Processor>, onDrain: @escaping @Sendable () -> Void = {}) {
        self.pipeline = pipeline
        self.onDrain = onDrain
    }

    public func run() async throws {
        pipeline.start()
        try await withGracefulShutdownHandler {
            try await pipeline.finished()
        } onGracefulShutdown: {
            onDrain()
            pipeline.requestStop()
        }
    }
}
