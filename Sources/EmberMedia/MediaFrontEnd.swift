import EmberContract

/// What one upload's media gives the model: frames in the vision tower's batch layout
/// (sampled keyframes, then the cover) and the log-mel of the audio window. Either is
/// nil when the model has no such tower or the media has none.
public struct PreparedMedia: Sendable {
    public var frames: FrameBatch?
    public var logMel: LogMel?
    /// What was decoded, before the model's preprocessing (frames already scaled).
    public var decoded: DecodedMedia
}

/// The model's media front end, built from its manifest's preprocessing (the contract
/// types): a decoder that scales frames once to the vision tower's size and decodes at
/// most the audio tower's window, the crop/normalize step, and the log-mel. Changing a
/// tower's preprocessing in the manifest changes what this produces; nothing else.
public struct MediaFrontEnd: Sendable {
    public let decoder: MediaDecoder
    public let vision: VisionFrontEnd?
    public let logMel: LogMelSpectrogram?

    /// `media` bounds the decode; its frame scaling, audio rate and audio length are set
    /// here from the towers (`maxAudioSeconds` is capped at the audio window, the one
    /// place the window is enforced; 0 without an audio tower).
    public init(vision: VisionPreprocessing?, audio: AudioFrontEnd?, media: MediaConfiguration) throws(ItemFailure) {
        var media = media
        media.frameScaling = vision
        self.vision = try vision.map { (p) throws(ItemFailure) in try VisionFrontEnd(p) }
        if let audio {
            logMel = try LogMelSpectrogram(audio)
            media.audioSampleRate = audio.sampleRate
            media.maxAudioSeconds = min(media.maxAudioSeconds, audio.windowSeconds)
        } else {
            logMel = nil
            media.maxAudioSeconds = 0
        }
        decoder = MediaDecoder(configuration: media)
    }

    /// Fetches and decodes the video and cover and turns them into model inputs. The
    /// cover counts as one more frame. Blocking; call it from a Dispatch queue.
    public func prepare(videoURI: String?, coverURI: String?) throws(ItemFailure) -> PreparedMedia {
        let decoded = try decoder.decode(videoURI: videoURI, coverURI: coverURI)
        var prepared = PreparedMedia(decoded: decoded)
        let images = decoded.frames + (decoded.cover.map { [$0] } ?? [])
        if let vision, !images.isEmpty { prepared.frames = try vision.batch(images) }
        if let logMel {
            let mel = try logMel(decoded.audio)
            if mel.frames > 0 { prepared.logMel = mel }
        }
        return prepared
    }
}
