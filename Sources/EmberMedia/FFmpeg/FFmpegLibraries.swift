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
