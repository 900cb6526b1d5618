import CFFmpeg

/// A decoder (`AVCodecContext`) opened for one stream, plus the frame it decodes into.
final class StreamDecoder {
    let context: UnsafeMutablePointer<AVCodecContext>
    let frame: UnsafeMutablePointer<AVFrame>

    init(stream: UnsafeMutablePointer<AVStream>, threads: Int32 = 1, maxPixels: Int = Int(Int32.max)) throws(FFmpegError) {
        let parameters = stream.pointee.codecpar!
        guard let codec = avcodec_find_decoder(parameters.pointee.codec_id) else {
            throw FFmpegError(code: ember_averror_invaliddata(), operation: "find decoder for codec \(parameters.pointee.codec_id.rawValue)")
        }
        guard let context = avcodec_alloc_context3(codec) else {
            throw FFmpegError(code: -12, operation: "allocate decoder")
        }
        guard let frame = av_frame_alloc() else {
            var owned: UnsafeMutablePointer<AVCodecContext>? = context
            avcodec_free_context(&owned)
            throw FFmpegError(code: -12, operation: "allocate frame")
        }
        self.context = context
        self.frame = frame
        // From here on deinit releases both, whichever call below fails.
        try check(avcodec_parameters_to_context(context, parameters), "copy codec parameters")
        context.pointee.pkt_timebase = stream.pointee.time_base
        context.pointee.thread_count = threads
        // The decoder refuses to allocate larger frames than this (declared sizes can lie).
        context.pointee.max_pixels = Int64(maxPixels)
        try check(avcodec_open2(context, codec, nil), "open decoder")
    }

    deinit {
        var ownedFrame: UnsafeMutablePointer<AVFrame>? = frame
        av_frame_free(&ownedFrame)
        var ownedContext: UnsafeMutablePointer<AVCodecContext>? = context
        avcodec_free_context(&ownedContext)
    }

    /// Sends a packet (nil flushes the decoder).
    func send(_ packet: UnsafeMutablePointer<AVPacket>?) throws(FFmpegError) {
        let status = avcodec_send_packet(context, packet)
        if status == ember_averror_eof() { return }
        try check(status, "decode")
    }

    /// Drops everything buffered and leaves draining mode, as after a seek.
    func reset() { avcodec_flush_buffers(context) }

    /// Receives the next decoded frame into `frame`; false when the decoder needs
    /// more input or is drained.
    func receive() throws(FFmpegError) -> Bool {
        let status = avcodec_receive_frame(context, frame)
        if status == ember_averror_eagain() || status == ember_averror_eof() { return false }
        try check(status, "decode")
        return true
    }
}

/// An `AVPacket` released on deinit.
final class Packet {
    let pointer: UnsafeMutablePointer<AVPacket>

    init() throws(FFmpegError) {
        guard let pointer = av_packet_alloc() else { throw FFmpegError(code: -12, operation: "allocate packet") }
        self.pointer = pointer
    }

    deinit {
        var owned: UnsafeMutablePointer<AVPacket>? = pointer
        av_packet_free(&owned)
    }
}
