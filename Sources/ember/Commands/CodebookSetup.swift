import EmberModel
import EmberPipeline
import Foundation

extension WorkerSetup {
    /// The semantic-ID assigner for `model.codebook`, or nil when none is configured.
    /// A codebook of another model is a start-up error naming both model ids.
    /// With a head, the codebook must be trained for the head's output (its model id and size).
    func semanticIDAssigner(modelID: String, dim: Int) throws -> SemanticIDAssigner? {
        guard !configuration.codebook.isEmpty else { return nil }
        do {
            let codebook = try Codebook(contentsOf: URL(fileURLWithPath: configuration.codebook))
            let assigner = try SemanticIDAssigner(
                codebook: codebook, disambiguation: configuration.semanticIDDisambiguation, modelID: modelID, dim: dim)
            logger.info(
                "codebook loaded",
                metadata: [
                    "codebook": "\(configuration.codebook)", "sizes": "\(codebook.sizes.map(String.init).joined(separator: "x"))",
                    "disambiguation": "\(configuration.semanticIDDisambiguation.rawValue)",
                    "trained_items": "\(codebook.statistics.items)",
                ])
            return assigner
        } catch {
            throw StartupError("model.codebook \(configuration.codebook): \(error)")
        }
    }
}
