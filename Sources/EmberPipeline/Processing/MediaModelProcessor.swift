import EmberMedia
import EmberModel
import Foundation

/// The worker's `ItemProcessor`: EmberMedia's front end (built from the model's manifest)
/// decodes an item's video, cover and audio into the towers' inputs on a decode thread;
/// EmberModel embeds them. Values cross the seam as the contract's types, untranslated.
public struct MediaModelProcessor: ItemProcessor {
    /// One item's model inputs, ready for the embedding stage.
    public struct Prepared: Sendable {
        public var input: ItemInput
        /// For semantic-ID disambiguation.
        public var itemID = ""
    }

    public let engine: EmbeddingEngine
    private let frontEnd: MediaFrontEnd
    /// Embed each item on its own, so an item's vector does not depend on which items
    /// were queued with it (see `init`).
    public let batchInvariant: Bool
    /// Assigns each embedding its semantic ID when a codebook is configured (to the head's
    /// output when a head is configured: the codebook is then trained for the head).
    public var semanticIDs: SemanticIDAssigner?
    /// The projection head applied after fusion (`model.head`), if any.
    public var head: AppliedHead?

    /// The head's id when one is applied (`omni-small+align@<hash>`), else the model's.
    public var modelID: String { head?.modelID ?? engine.modelID }
    /// Size of the output vectors.
    public var outputDim: Int { head?.dims ?? engine.manifest.output.dim }
    public var embedsOneByOne: Bool { batchInvariant }

    /// Builds the media front end the model's manifest asks for.
    ///
    /// `batchInvariant`: OpenBLAS picks kernels and tiles by matrix size, so an item
    /// embedded together with others differs from the same item alone in the last
    /// float bits (≈1e-6), which flips f16 roundings. With `true` (the worker's
    /// default) every item is embedded on its own, a replay reproduces the live run's
    /// records byte for byte, and the embed stage does not wait to fill batches; `false`
    /// packs each micro-batch into shared matrices.
    public init(engine: EmbeddingEngine, media: MediaConfiguration, batchInvariant: Bool = true) throws(ItemFailure) {
        self.engine = engine
        self.batchInvariant = batchInvariant
        let towers = engine.manifest.towers
        do {
            frontEnd = try MediaFrontEnd(vision: towers.vision?.preprocessing, audio: towers.audio?.preprocessing, media: media)
        } catch {
            throw ItemFailure(.modelError, "the model's preprocessing is not supported: \(error.message)")
        }
    }

    /// Fetches and decodes the video and cover into the towers' inputs. Whether the
    /// result has anything to embed is the engine's call (`no_content`).
    public func prepare(_ event: UploadEvent) throws(ItemFailure) -> Prepared {
        var input = ItemInput(text: engine.manifest.towers.text == nil ? nil : event.text)
        let videoURI = event.videoURI.flatMap { $0.isEmpty ? nil : $0 }
        let coverURI = event.coverURI.flatMap { $0.isEmpty ? nil : $0 }
        guard videoURI != nil || coverURI != nil else { return Prepared(input: input, itemID: event.itemID) }
        let media = try frontEnd.prepare(videoURI: videoURI, coverURI: coverURI)
        input.frames = media.frames
        input.logMel = media.logMel
        return Prepared(input: input, itemID: event.itemID)
    }

    /// With `batchInvariant` each item is its own model call; otherwise the whole batch
    /// is one call per tower.
    public func embed(_ batch: [Prepared]) -> [Result<EmbeddedItem, ItemFailure>] {
        let inputs = batch.map(\.input)
        let results = batchInvariant ? inputs.flatMap { engine.embedEach([$0]) } : engine.embedEach(inputs)
        return zip(batch, results).map { prepared, result in
            switch result {
            case .success(let embedding):
                var item = EmbeddedItem(vector: embedding.vector, modalities: embedding.modalities, matryoshka: embedding.matryoshka)
                if let head { head.apply(to: &item, engineModelID: engine.modelID) }
                do {
                    item.semanticID = try semanticIDs?.semanticID(for: item.vector, itemID: prepared.itemID)
                } catch {
                    return .failure(ItemFailure(.modelError, "\(error)"))
                }
                return .success(item)
            case .failure(let error):
                return .failure(ItemFailure(error))
            }
        }
    }
}
