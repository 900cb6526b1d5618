import EmberMedia
import EmberModel
import Foundation

/// The worker's `ItemProcessor`: EmberMedia decodes and preprocesses an item's video,
/// cover and audio on a decode thread; EmberModel embeds micro-batches of them.
public struct MediaModelProcessor: ItemProcessor {
    /// One item's model inputs, ready for the embedding stage.
    public struct Prepared: Sendable {
        public var input: ItemInput
        /// For semantic-ID disambiguation.
        public var itemID = ""
    }

    public let engine: EmbeddingEngine
    private let decoder: MediaDecoder
    /// Present when the model has a vision tower.
    private let framePreprocessor: ImagePreprocessor?
    /// Present when the model has an audio tower.
    private let logMel: LogMelSpectrogram?
    /// Embed each item of a micro-batch on its own, so an item's vector does not depend
    /// on which items shared its batch (see `init`).
    public let batchInvariant: Bool
    /// Assigns each embedding its semantic ID when a codebook is configured.
    public var semanticIDs: SemanticIDAssigner?

    public var modelID: String { engine.modelID }

    /// Builds the media front end the model's manifest asks for. `media.maxAudioSeconds`
    /// is capped at the audio tower's window.
    ///
    /// `batchInvariant`: OpenBLAS picks kernels and tiles by matrix size, so an item
    /// embedded together with others differs from the same item alone in the last
    /// float bits (≈1e-6), which flips f16 roundings. With `true` (the worker's
    /// default) every item is embedded on its own and a replay reproduces the live
    /// run's records byte for byte; `false` packs the micro-batch into shared matrices.
    public init(engine: EmbeddingEngine, media: MediaConfiguration, batchInvariant: Bool = true) throws(ItemFailure) {
        self.engine = engine
        self.batchInvariant = batchInvariant
        var media = media
        do {
            if let vision = engine.manifest.towers.vision {
                let p = vision.preprocessing
                // torchvision's eval transform: resize the shorter side to size·256/224, centre crop.
                framePreprocessor = try ImagePreprocessor(
                    ImagePreprocessing(
                        width: p.imageSize, height: p.imageSize,
                        resize: .centerCrop(shorterSide: p.imageSize * 256 / 224), mean: p.mean, std: p.std))
            } else {
                framePreprocessor = nil
            }
            if let audio = engine.manifest.towers.audio {
                let p = audio.preprocessing
                logMel = try LogMelSpectrogram(sampleRate: p.sampleRate, fftSize: p.nFft, hopLength: p.hopLength, melBins: p.nMels)
                media.audioSampleRate = p.sampleRate
                media.maxAudioSeconds = min(media.maxAudioSeconds, p.maxSeconds)
            } else {
                logMel = nil
                media.maxAudioSeconds = 0
            }
        } catch {
            throw ItemFailure(.modelError, "the model's preprocessing is not supported: \(error)")
        }
        decoder = MediaDecoder(configuration: media)
    }

    /// Fetches and decodes the video and cover, turns frames into normalized CHW
    /// tensors and audio into a log-mel spectrogram. The cover counts as one more frame.
    public func prepare(_ event: UploadEvent) throws(ItemFailure) -> Prepared {
        var input = ItemInput(text: engine.manifest.towers.text == nil ? nil : event.text)
        let videoURI = event.videoURI.flatMap { $0.isEmpty ? nil : $0 }
        let coverURI = event.coverURI.flatMap { $0.isEmpty ? nil : $0 }
        guard videoURI != nil || coverURI != nil else { return Prepared(input: input, itemID: event.itemID) }

        let media: DecodedMedia
        do {
            media = try decoder.decode(videoURI: videoURI, coverURI: coverURI)
        } catch {
            throw ItemFailure(error)
        }
        do throws(MediaError) {
            if let framePreprocessor {
                for image in media.frames + (media.cover.map { [$0] } ?? []) {
                    input.frames.append(try framePreprocessor(image))
                }
            }
            if let logMel, !media.audio.isEmpty {
                let mel = try logMel(media.audio)
                if mel.frames > 0 {
                    input.logMel = EmberModel.LogMel(bins: mel.melBins, frames: mel.frames, values: mel.values)
                }
            }
        } catch {
            throw ItemFailure(error)
        }
        if input.text == nil && input.frames.isEmpty && input.logMel == nil {
            throw ItemFailure(.noContent, "the media has no video frames, cover or audio the model can use")
        }
        return Prepared(input: input, itemID: event.itemID)
    }

    public func embed(_ batch: [Prepared]) -> [Result<EmbeddedItem, ItemFailure>] {
        let inputs = batch.map(\.input)
        let results = batchInvariant ? inputs.flatMap { engine.embedEach([$0]) } : engine.embedEach(inputs)
        return zip(batch, results).map { prepared, result in
            switch result {
            case .success(let embedding):
                let semanticID: [Int]?
                do {
                    semanticID = try semanticIDs?.semanticID(for: embedding.vector, itemID: prepared.itemID)
                } catch {
                    return .failure(ItemFailure(.modelError, "\(error)"))
                }
                return .success(
                    EmbeddedItem(
                        vector: embedding.vector, semanticID: semanticID,
                        modalities: .init(
                            visionFrames: embedding.modalities.visionFrames, textTokens: embedding.modalities.textTokens,
                            audioSeconds: embedding.modalities.audioSeconds)))
            case .failure(let error):
                return .failure(ItemFailure(.modelError, "\(error)"))
            }
        }
    }
}

extension ItemFailure {
    /// A media failure keeps its dead-letter class and whether a retry may help.
    init(_ error: MediaError) {
        let failureClass = FailureClass(rawValue: error.errorClass) ?? .mediaInvalid
        self.init(failureClass, error.message, isTransient: error.isTransient)
    }
}
