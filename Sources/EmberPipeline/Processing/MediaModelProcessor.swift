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
        /// The event's text fields, for re-assembling the text block with a transcript.
        public var event: UploadEvent?
    }

    public let engine: EmbeddingEngine
    private let frontEnd: MediaFrontEnd
    /// Embed each item on its own, so an item's vector does not depend on which items
    /// were queued with it (see `init`).
    public let batchInvariant: Bool
    /// Threads one lane's model call uses (`model.threads`); a call lent idle lanes' cores
    /// uses that many times more, up to the engine's `threads`.
    public let threadsPerLane: Int
    /// Assigns each embedding its semantic ID when a codebook is configured (to the head's
    /// output when a head is configured: the codebook is then trained for the head).
    public var semanticIDs: SemanticIDAssigner?
    /// The projection head applied after fusion (`model.head`), if any.
    public var head: AppliedHead?
    /// Speech transcription for items without `asr_text` (`asr.enabled`), if any.
    public var speech: SpeechTranscription?

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
    ///
    /// `threadsPerLane` (default: all the engine's threads) is what one lane's call uses.
    public init(engine: EmbeddingEngine, media: MediaConfiguration, batchInvariant: Bool = true, threadsPerLane: Int? = nil) throws(ItemFailure) {
        self.engine = engine
        self.batchInvariant = batchInvariant
        self.threadsPerLane = min(max(threadsPerLane ?? engine.threads, 1), engine.threads)
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
        guard videoURI != nil || coverURI != nil else { return Prepared(input: input, itemID: event.itemID, event: event) }
        let media = try frontEnd.prepare(videoURI: videoURI, coverURI: coverURI)
        input.frames = media.frames
        input.logMel = media.logMel
        return Prepared(input: input, itemID: event.itemID, event: event)
    }

    /// With `speech`: transcribes the audio of items that came without `asr_text` and
    /// puts the transcript where the event's own `asr_text` goes (`UploadEvent.text`),
    /// so the text tower reads exactly what it would have read had the event carried it.
    /// Runs on the embed lane, before the model. One transcript (or nil) per item.
    func transcribe(_ batch: inout [Prepared]) -> [GeneratedTranscript?] {
        guard let speech, engine.manifest.towers.text != nil else { return batch.map { _ in nil } }
        return batch.indices.map { i in
            guard var event = batch[i].event, let mel = batch[i].input.logMel,
                  (event.asrText ?? "").trimmingCharacters(in: .whitespacesAndNewlines).isEmpty,
                  let transcript = speech.transcript(of: mel, itemID: event.itemID)
            else { return nil }
            event.asrText = transcript.text
            batch[i].input.text = event.text
            return transcript
        }
    }

    /// With `batchInvariant` each item is its own model call; otherwise the whole batch
    /// is one call per tower. Each call uses `threadsPerLane` threads.
    public func embed(_ batch: [Prepared]) -> [Result<EmbeddedItem, ItemFailure>] {
        embed(batch, lanes: 1)
    }

    /// `embed` on `lanes` × `threadsPerLane` threads (at most the engine's `threads`).
    public func embed(_ batch: [Prepared], lanes: Int) -> [Result<EmbeddedItem, ItemFailure>] {
        var batch = batch
        let transcripts = transcribe(&batch)
        let inputs = batch.map(\.input)
        let threads = min(max(lanes, 1) * threadsPerLane, engine.threads)
        let results = batchInvariant ? inputs.flatMap { engine.embedEach([$0], threads: threads) } : engine.embedEach(inputs, threads: threads)
        return zip(zip(batch, transcripts), results).map { item, result in
            let (prepared, transcript) = item
            switch result {
            case .success(let embedding):
                var item = EmbeddedItem(vector: embedding.vector, modalities: embedding.modalities, matryoshka: embedding.matryoshka)
                item.transcript = transcript
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
