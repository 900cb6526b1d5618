import EmberContract

/// Everything that bounds and shapes one decode. A value type: build it once from
/// the worker's configuration and share it between threads.
public struct MediaConfiguration: Sendable, Equatable {
    /// Which URIs may be opened at all. Default: http/https to any public address, no files.
    public var uriPolicy: URIPolicy = URIPolicy()

    /// Seconds allowed for connecting, probing the container and reading its
    /// headers. Default 10. Exceeding it is a transient `media_unavailable`.
    public var openTimeoutSeconds: Double = 10
    /// Seconds a read may go without receiving a single byte. Default 10. Transient.
    public var readTimeoutSeconds: Double = 10
    /// Wall-clock budget for a whole decode call (video and cover each), so a
    /// server that drips one byte at a time cannot hold a worker. Default 120. Transient.
    public var totalTimeoutSeconds: Double = 120

    /// Largest input in bytes (declared size, or bytes read). Default 512 MiB.
    public var maxBytes: Int64 = 512 << 20
    /// Longest media in seconds (declared duration, or timestamps read). Default 600.
    public var maxDurationSeconds: Double = 600
    /// Largest frame in pixels (width × height), checked on the declared size
    /// before decoding and by the decoder itself. Default 4096 × 2304 (4K UHD fits).
    public var maxPixelsPerFrame: Int = 4096 * 2304

    /// Keyframes to sample, spread over the duration (see `KeyframeSampler`). Default 8.
    public var maxFrames: Int = 8
    /// How frames and covers are scaled while converting to RGB: to the vision tower's
    /// `scaledSize`, once, with its interpolation (`MediaFrontEnd` sets it from the model
    /// manifest). nil keeps the decoded size. Default nil.
    public var frameScaling: VisionPreprocessing? = nil

    /// Audio is decoded to mono float at this rate. Default 16 000 (Whisper).
    public var audioSampleRate: Int = 16_000
    /// At most this many seconds of audio, from the start. Default 30. `MediaFrontEnd`
    /// caps it at the audio tower's window, the one place that window is enforced.
    public var maxAudioSeconds: Double = 30

    /// Decoder threads per decode call. Default 1: the pipeline runs several
    /// decodes side by side on its own Dispatch queues.
    public var decoderThreads: Int = 1

    /// Container formats (FFmpeg demuxer names) that may be opened. Anything else
    /// is `media_invalid`; formats that reference other resources (playlists,
    /// concat scripts, image sequences) are `forbidden_uri` unless listed here.
    public var allowedFormats: [String] = MediaConfiguration.defaultAllowedFormats

    /// Video and audio containers an upload service produces, plus single images for covers.
    public static let defaultAllowedFormats = [
        "mov", "mp4", "m4a", "3gp", "3g2", "mj2", "matroska", "webm", "avi", "flv", "mpegts",
        "ogg", "mp3", "aac", "wav", "flac", "jpeg_pipe", "png_pipe", "webp_pipe", "bmp_pipe", "gif",
    ]

    public init() {}
}
