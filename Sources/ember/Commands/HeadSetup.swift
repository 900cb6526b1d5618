import EmberModel
import EmberPipeline
import Foundation

extension WorkerSetup {
    /// The projection head for `model.head`, or nil when none is configured. An unreadable
    /// file, a head for another model or an untrained size is a start-up error.
    func appliedHead(for engine: EmbeddingEngine) throws -> AppliedHead? {
        guard !configuration.head.isEmpty else {
            if configuration.rawVector { logger.warning("output.raw_vector has no effect without model.head") }
            return nil
        }
        do {
            let head = try ProjectionHead(contentsOf: URL(fileURLWithPath: configuration.head))
            let applied = try AppliedHead(
                head: head, dims: configuration.headDims, keepRaw: configuration.rawVector, modelID: engine.modelID,
                modelDim: engine.manifest.output.dim)
            logger.info(
                "projection head loaded",
                metadata: [
                    "head": "\(configuration.head)", "model_id": "\(applied.modelID)", "layers": "\(head.layers.specification)",
                    "dims": "\(applied.dims)", "sizes": "\(head.matryoshka.map(String.init).joined(separator: ","))",
                    "raw_vector": "\(applied.keepRaw)",
                ])
            return applied
        } catch {
            throw StartupError("model.head \(configuration.head): \(error)")
        }
    }
}
