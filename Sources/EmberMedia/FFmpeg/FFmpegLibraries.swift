import CFFmpeg

/// Versions of the FFmpeg libraries linked into this process.
public enum FFmpegLibraries {
    public static var versions: [String: String] {
        [
            "libavformat": format(avformat_version()),
            "libavcodec": format(avcodec_version()),
            "libavutil": format(avutil_version()),
            "libswscale": format(swscale_version()),
            "libswresample": format(swresample_version()),
        ]
    }

    /// FFmpeg packs versions as major << 16 | minor << 8 | micro.
    private static func format(_ packed: UInt32) -> String {
        "\(packed >> 16).\((packed >> 8) & 0xff).\(packed & 0xff)"
    }
}

/// How much FFmpeg itself writes to standard error (process-wide, default `.info`).
/// Hostile uploads make decoders complain loudly; workers usually want `.error`
/// or `.quiet` and rely on the typed `ItemFailure`s instead.
public enum FFmpegLogLevel: Int32, Sendable {
    case quiet = -8, panic = 0, fatal = 8, error = 16, warning = 24, info = 32, verbose = 40, debug = 48

    public static var current: FFmpegLogLevel {
        get { FFmpegLogLevel(rawValue: av_log_get_level()) ?? .info }
        set { av_log_set_level(newValue.rawValue) }
    }
}
