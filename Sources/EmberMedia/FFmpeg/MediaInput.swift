import CFFmpeg

/// An opened media container (`AVFormatContext`) with its streams probed.
/// Closes the container on deinit, on every path.
final class MediaInput {
    let context: UnsafeMutablePointer<AVFormatContext>

    init(url: String, options: [String: String] = [:]) throws(FFmpegError) {
        var context: UnsafeMutablePointer<AVFormatContext>? = nil
        var dictionary: OpaquePointer? = nil
        for (key, value) in options { av_dict_set(&dictionary, key, value, 0) }
        defer { av_dict_free(&dictionary) }
        // On failure avformat_open_input frees the context and sets it to NULL.
        try check(avformat_open_input(&context, url, nil, &dictionary), "open \(url)")
        guard let context else { throw FFmpegError(code: ember_averror_invaliddata(), operation: "open \(url)") }
        self.context = context
        do {
            try check(avformat_find_stream_info(context, nil), "probe \(url)")
        } catch {
            var owned: UnsafeMutablePointer<AVFormatContext>? = context
            avformat_close_input(&owned)
            throw error
        }
    }

    deinit {
        var owned: UnsafeMutablePointer<AVFormatContext>? = context
        avformat_close_input(&owned)
    }

    /// Container duration in seconds, when known.
    var durationSeconds: Double? {
        let duration = context.pointee.duration
        guard duration != ember_av_nopts_value(), duration > 0 else { return nil }
        return Double(duration) / Double(ember_av_time_base())
    }

    /// Index of the best stream of a media type, or nil when there is none.
    func bestStream(_ type: AVMediaType) -> Int32? {
        let index = av_find_best_stream(context, type, -1, -1, nil, 0)
        return index >= 0 ? index : nil
    }

    func stream(_ index: Int32) -> UnsafeMutablePointer<AVStream> {
        context.pointee.streams[Int(index)]!
    }

    /// Reads the next packet into `packet`; returns false at end of file.
    func readPacket(into packet: UnsafeMutablePointer<AVPacket>) throws(FFmpegError) -> Bool {
        let status = av_read_frame(context, packet)
        if status == ember_averror_eof() { return false }
        try check(status, "read packet")
        return true
    }
}
