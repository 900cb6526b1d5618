import Logging
import ServiceLifecycle

/// Runs an `EmbeddingPipeline` as a swift-service-lifecycle `Service`: it starts the
/// stage threads and, on graceful shutdown (SIGTERM/SIGINT through the
/// `ServiceGroup`), stops admitting, drains within the configured deadline, commits,
/// leaves the group and flushes.
public struct PipelineService<Processor: ItemProcessor>: Service {
    private let pipeline: EmbeddingPipeline<Processor>

    public init(pipeline: EmbeddingPipeline<Processor>) {
        self.pipeline = pipeline
    }

    public func run() async throws {
        pipeline.start()
        try await withGracefulShutdownHandler {
            try await pipeline.finished()
        } onGracefulShutdown: {
            pipeline.requestStop()
        }
    }
}
