import CFFmpeg

/// Decodes up to `maxSeconds` of a media file's best audio stream, resampled with
/// swresample to mono float samples at `sampleRate`.
public func decodeAudio(url: String, sampleRate: Int32 = 16_000, maxSeconds: Double) throws(FFmpegError) -> [Float] {
    let input = try MediaInput(url: url)
    guard let streamIndex = input.bestStream(AVMEDIA_TYPE_AUDIO) else {
        throw FFmpegError(code: ember_averror_invaliddata(), operation: "find an audio stream in \(url)")
    }
    let decoder = try StreamDecoder(stream: input.stream(streamIndex))
    let packet = try Packet()

    var outputLayout = AVChannelLayout()
    ember_av_channel_layout_mono(&outputLayout)
    var resampler: OpaquePointer? = nil
    try check(
        swr_alloc_set_opts2(
            &resampler, &outputLayout, AV_SAMPLE_FMT_FLT, sampleRate,
            &decoder.context.pointee.ch_layout, decoder.context.pointee.sample_fmt, decoder.context.pointee.sample_rate,
            0, nil),
        "configure resampler")
    defer { swr_free(&resampler) }
    try check(swr_init(resampler), "initialize resampler")

    let limit = Int(maxSeconds * Double(sampleRate))
    var samples: [Float] = []
    samples.reserveCapacity(limit)

    /// Resamples the decoder's current frame (or flushes the resampler when nil).
    func resample(_ frame: UnsafeMutablePointer<AVFrame>?) throws(FFmpegError) {
        let inputCount = frame?.pointee.nb_samples ?? 0
        let capacity = Int(swr_get_out_samples(resampler, inputCount))
        guard capacity > 0 else { return }
        var chunk = [Float](repeating: 0, count: capacity)
        let status = chunk.withUnsafeMutableBytes { bytes -> Int32 in
            var output: UnsafeMutablePointer<UInt8>? = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self)
            let status: Int32
            if let frame {
                status = withUnsafeMutablePointer(to: &frame.pointee.data) { data in
                    data.withMemoryRebound(to: UnsafePointer<UInt8>?.self, capacity: 8) { source in
                        swr_convert(resampler, &output, Int32(capacity), source, inputCount)
                    }
                }
            } else {
                status = swr_convert(resampler, &output, Int32(capacity), nil, 0)
            }
            return status
        }
        let produced = try check(status, "resample audio")
        samples.append(contentsOf: chunk.prefix(min(Int(produced), limit - samples.count)))
    }

    reading: while samples.count < limit, try input.readPacket(into: packet.pointer) {
        defer { av_packet_unref(packet.pointer) }
        guard packet.pointer.pointee.stream_index == streamIndex else { continue }
        try decoder.send(packet.pointer)
        while try decoder.receive() {
            try resample(decoder.frame)
            if samples.count >= limit { break reading }
        }
    }
    if samples.count < limit {
        try decoder.send(nil)
        while samples.count < limit, try decoder.receive() { try resample(decoder.frame) }
        if samples.count < limit { try resample(nil) }
    }
    return samples
}
