import CFFmpeg

/// Decodes the first keyframe of a media file's best video stream as RGB.
///
/// Non-key packets are dropped before they reach the decoder, which only works
/// for streams whose keyframes are independently decodable (IDR).
public func decodeFirstKeyframe(url: String) throws(FFmpegError) -> RGBImage {
    let input = try MediaInput(url: url)
    guard let streamIndex = input.bestStream(AVMEDIA_TYPE_VIDEO) else {
        throw FFmpegError(code: ember_averror_invaliddata(), operation: "find a video stream in \(url)")
    }
    let stream = input.stream(streamIndex)
    let decoder = try StreamDecoder(stream: stream)
    let packet = try Packet()
    let timeBase = stream.pointee.time_base

    func decoded() throws(FFmpegError) -> RGBImage? {
        guard try decoder.receive() else { return nil }
        let pts = decoder.frame.pointee.best_effort_timestamp
        let seconds = pts == ember_av_nopts_value() ? nil : Double(pts) * av_q2d(timeBase)
        return try rgbImage(from: decoder.frame, timestampSeconds: seconds)
    }

    while try input.readPacket(into: packet.pointer) {
        defer { av_packet_unref(packet.pointer) }
        guard packet.pointer.pointee.stream_index == streamIndex,
            packet.pointer.pointee.flags & AV_PKT_FLAG_KEY != 0
        else { continue }
        try decoder.send(packet.pointer)
        if let image = try decoded() { return image }
    }
    try decoder.send(nil)
    if let image = try decoded() { return image }
    throw FFmpegError(code: ember_averror_invaliddata(), operation: "decode a keyframe of \(url)")
}
