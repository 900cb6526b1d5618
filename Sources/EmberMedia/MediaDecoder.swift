
/// What the model needs from one upload.
public struct DecodedMedia: Sendable {
    /// Sampled keyframes in presentation order (at most `maxFrames`), each with its
    /// timestamp in seconds on the stream's clock. Empty without a video stream.
    public var frames: [RGBImage]
    /// The decoded cover image, when a cover URI was given.
    public var cover: RGBImage?
    /// Mono float samples at `audioSampleRate`, at most `maxAudioSeconds` long.
    /// Empty without an audio stream.
    public var audio: [Float]
    public var audioSampleRate: Int
    /// Container (or stream) duration in seconds, when known.
    public var durationSeconds: Double?
    /// Keyframes in the whole video stream (not just the sampled ones).
    public var keyframeCount: Int
    /// True when the keyframes could not be decoded on their own (open GOP, missing
    /// key flags, decoder errors) and the video was decoded in full instead.
    public var usedFullDecode: Bool

    public var audioSeconds: Double { audioSampleRate > 0 ? Double(audio.count) / Double(audioSampleRate) : 0 }

    public init(
        frames: [RGBImage] = [], cover: RGBImage? = nil, audio: [Float] = [], audioSampleRate: Int = 16_000,
        durationSeconds: Double? = nil, keyframeCount: Int = 0, usedFullDecode: Bool = false
    ) {
        self.frames = frames
        self.cover = cover
        self.audio = audio
        self.audioSampleRate = audioSampleRate
        self.durationSeconds = durationSeconds
        self.keyframeCount = keyframeCount
        self.usedFullDecode = usedFullDecode
    }
}

/// Decodes uploads with FFmpeg under a `MediaConfiguration`.
///
/// A value: each call opens, decodes and releases its own FFmpeg state on the
/// calling thread (blocking; call it from a Dispatch queue, not from the Swift
/// concurrency pool), so one decoder may be shared by any number of threads.
public struct MediaDecoder: Sendable {
    public let configuration: MediaConfiguration

    public init(configuration: MediaConfiguration = MediaConfiguration()) {
        self.configuration = configuration
    }

    /// Decodes the video's sampled keyframes and audio and the cover image.
    /// Either URI may be nil; a failure of either throws.
    public func decode(videoURI: String?, coverURI: String? = nil) throws(ItemFailure) -> DecodedMedia {
        var media = DecodedMedia(audioSampleRate: configuration.audioSampleRate)
        if let videoURI { media = try decodeVideo(uri: videoURI) }
        if let coverURI { media.cover = try decodeImage(uri: coverURI) }
        return media
    }

    /// Keyframes and audio of one video (or audio-only) URI.
    public func decodeVideo(uri: String) throws(ItemFailure) -> DecodedMedia {
        try decodeVideo(uri: uri, forceFullDecode: false)
    }

    /// `forceFullDecode` skips the keyframe-only pass (tests compare both paths).
    func decodeVideo(uri: String, forceFullDecode: Bool) throws(ItemFailure) -> DecodedMedia {
        let resolved = try configuration.uriPolicy.resolve(uri)
        var pass = try read(resolved, uri: uri, mode: forceFullDecode ? .fullDecode : .keyPacketsOnly, wantAudio: true)
        if forceFullDecode { pass.usedFullDecode = true }
        if pass.needsFullDecode {
            let full = try read(resolved, uri: uri, mode: .fullDecode, wantAudio: false)
            pass.frames = full.frames
            pass.usedFullDecode = true
            if full.frames.isEmpty && pass.audio.isEmpty {
                throw .invalid("\(uri): no video frame could be decoded")
            }
        }
        return DecodedMedia(
            frames: pass.frames, audio: pass.audio, audioSampleRate: configuration.audioSampleRate,
            durationSeconds: pass.duration, keyframeCount: pass.keyframeCount, usedFullDecode: pass.usedFullDecode)
    }

    /// The first frame of an image (JPEG, PNG, WebP, …) or video URI, used for covers.
    public func decodeImage(uri: String) throws(ItemFailure) -> RGBImage {
        try readImage(configuration.uriPolicy.resolve(uri), uri: uri)
    }
}
