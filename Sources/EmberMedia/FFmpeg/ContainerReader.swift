// MediaDecoder's FFmpeg side: one forward pass over a container (demux, keyframe
// selection before the decoder, audio resampling) and single-image decoding. Every
// AVPacket/AVFrame the decoder touches is handled here, inside FFmpeg/.
import CFFmpeg

extension MediaDecoder {
    /// The first picture of `resolved`, converted (and scaled) like a keyframe.
    func readImage(_ resolved: URIPolicy.Resolved, uri: String) throws(ItemFailure) -> RGBImage {
        let input = try MediaInput(resolved, displayURI: uri, limits: InputLimits(configuration), policy: configuration.uriPolicy)
        guard let index = input.bestStream(AVMEDIA_TYPE_VIDEO) else { throw .invalid("\(uri) contains no image") }
        let decoder = try ffmpeg(.decode, uri) { () throws(FFmpegError) in
            try StreamDecoder(stream: input.stream(index), threads: 1, maxPixels: configuration.maxPixelsPerFrame)
        }
        let packet = try ffmpeg(.decode, uri) { () throws(FFmpegError) in try Packet() }
        while try input.readPacket(into: packet.pointer) {
            defer { av_packet_unref(packet.pointer) }
            guard packet.pointer.pointee.stream_index == index else { continue }
            try ffmpeg(.decode, uri, decoder: decoder) { () throws(FFmpegError) in try decoder.send(packet.pointer) }
            if let image = try receiveImage(decoder, uri: uri, timeBase: nil) { return image }
        }
        try ffmpeg(.decode, uri, decoder: decoder) { () throws(FFmpegError) in try decoder.send(nil) }
        if let image = try receiveImage(decoder, uri: uri, timeBase: nil) { return image }
        throw .invalid("\(uri): no image could be decoded")
    }

    // MARK: - One pass over the container

    enum Mode { case keyPacketsOnly, fullDecode }

    struct Pass {
        var frames: [RGBImage] = []
        var audio: [Float] = []
        var duration: Double?
        var keyframeCount = 0
        var needsFullDecode = false
        var usedFullDecode = false
    }

    /// Reads the container once, front to back. In `keyPacketsOnly` mode only the
    /// keyframe packets the sampler wants reach the video decoder; a decoder error
    /// or a keyframe that yields no picture sets `needsFullDecode` instead of failing.
    func read(_ resolved: URIPolicy.Resolved, uri: String, mode: Mode, wantAudio: Bool) throws(ItemFailure) -> Pass {
        let input = try MediaInput(resolved, displayURI: uri, limits: InputLimits(configuration), policy: configuration.uriPolicy)
        let context = input.context
        var videoIndex = input.bestStream(AVMEDIA_TYPE_VIDEO)
        if let index = videoIndex, input.stream(index).pointee.disposition & AV_DISPOSITION_ATTACHED_PIC != 0 {
            videoIndex = nil  // embedded cover art of an audio file, not a video
        }
        let audioIndex = wantAudio ? input.bestStream(AVMEDIA_TYPE_AUDIO) : nil
        guard videoIndex != nil || audioIndex != nil else { throw .invalid("\(uri) has neither audio nor video") }
        for index in 0..<Int32(context.pointee.nb_streams) where index != videoIndex && index != audioIndex {
            input.stream(index).pointee.discard = AVDISCARD_ALL
        }

        var pass = Pass()
        pass.duration = input.durationSeconds
        let packet = try ffmpeg(.decode, uri) { () throws(FFmpegError) in try Packet() }

        // Video.
        var video: StreamDecoder? = nil
        var videoTimeBase = AVRational(num: 1, den: 1)
        var videoStart = input.startSeconds
        var videoFailed = false
        var sentKeyframes = 0
        if let videoIndex {
            let stream = input.stream(videoIndex)
            videoTimeBase = stream.pointee.time_base
            if stream.pointee.start_time != ember_av_nopts_value() {
                videoStart = Double(stream.pointee.start_time) * av_q2d(videoTimeBase)
            }
            if pass.duration == nil, stream.pointee.duration > 0 {
                pass.duration = Double(stream.pointee.duration) * av_q2d(videoTimeBase)
            }
            // Not AVDISCARD_NONKEY: the MP4 demuxer then skips composition offsets and
            // reports wrong timestamps for the keyframes after B-frames.
            video = try ffmpeg(.decode, uri) { () throws(FFmpegError) in
                try StreamDecoder(stream: stream, threads: Int32(max(1, configuration.decoderThreads)), maxPixels: configuration.maxPixelsPerFrame)
            }
        }
        let rotation = videoIndex.map { displayRotation(of: input.stream($0)) } ?? 0
        var sampler = KeyframeSampler(maxFrames: configuration.maxFrames, start: videoStart, duration: pass.duration)
        let wantsEveryFrameInSlot = mode == .fullDecode
        let converter = FrameConverter(scaling: configuration.frameScaling)
        var pictures = 0

        /// Takes every frame the video decoder has ready.
        func drainVideo() throws(ItemFailure) {
            guard let video else { return }
            while try ffmpeg(.decode, uri, decoder: video, { () throws(FFmpegError) in try video.receive() }) {
                let seconds = timestamp(video.frame.pointee.best_effort_timestamp, videoTimeBase)
                if wantsEveryFrameInSlot {
                    // Full decode: the first keyframe (or intra picture) in each slot.
                    let frame = video.frame.pointee
                    guard frame.key_frame != 0 || frame.pict_type == AV_PICTURE_TYPE_I, sampler.wants(seconds) else { continue }
                }
                try checkPixels(video.frame, uri)
                let image = try ffmpeg(.decode, uri) { () throws(FFmpegError) in
                    try converter.rgbImage(from: video.frame, timestampSeconds: seconds)
                }
                pass.frames.append(image.rotated(clockwise: rotation))
                pictures += 1
                sampler.thin(&pass.frames)
            }
        }

        // Audio.
        var audio: StreamDecoder? = nil
        var resampler: AudioResampler? = nil
        let audioLimit = Int(max(0, configuration.maxAudioSeconds) * Double(configuration.audioSampleRate))
        if let audioIndex, audioLimit == 0 { input.stream(audioIndex).pointee.discard = AVDISCARD_ALL }
        if let audioIndex, audioLimit > 0 {
            let stream = input.stream(audioIndex)
            audio = try ffmpeg(.decode, uri) { () throws(FFmpegError) in try StreamDecoder(stream: stream) }
            resampler = try ffmpeg(.decode, uri) { () throws(FFmpegError) in try AudioResampler(sampleRate: Int32(configuration.audioSampleRate)) }
            pass.audio.reserveCapacity(audioLimit)
        }
        func drainAudio() throws(ItemFailure) {
            guard let audio, let resampler else { return }
            while pass.audio.count < audioLimit, try ffmpeg(.decode, uri, { () throws(FFmpegError) in try audio.receive() }) {
                try ffmpeg(.decode, uri) { () throws(FFmpegError) in
                    try resampler.convert(audio.frame, appendingTo: &pass.audio, limit: audioLimit)
                }
            }
        }
        var audioDone = audio == nil
        var audioErrors = 0
        var lastAudioError: ItemFailure? = nil

        while try input.readPacket(into: packet.pointer) {
            defer { av_packet_unref(packet.pointer) }
            let current = packet.pointer.pointee
            if current.stream_index == videoIndex, let video {
                let seconds = timestamp(current.pts, videoTimeBase)
                if let seconds, seconds - videoStart > configuration.maxDurationSeconds {
                    throw .tooLarge("\(uri) runs past the limit of \(MediaInput.format(configuration.maxDurationSeconds)) s")
                }
                let isKey = current.flags & AV_PKT_FLAG_KEY != 0
                if isKey { pass.keyframeCount += 1 }
                switch mode {
                case .keyPacketsOnly:
                    guard isKey, !videoFailed, sampler.wants(seconds) else { continue }
                    sentKeyframes += 1
                    // Each keyframe is decoded on its own, as after a seek: reset the
                    // decoder, send the packet, drain. Non-IDR keyframes (open GOP
                    // with recovery points) decode correctly this way too.
                    let before = pictures
                    do throws(ItemFailure) {
                        video.reset()
                        try ffmpeg(.decode, uri, decoder: video) { () throws(FFmpegError) in try video.send(packet.pointer) }
                        try ffmpeg(.decode, uri, decoder: video) { () throws(FFmpegError) in try video.send(nil) }
                        try drainVideo()
                    } catch where error.failureClass == .mediaInvalid {
                        videoFailed = true  // decoded again in full below
                    }
                    // A keyframe that yields no picture cannot stand alone: decode in full.
                    if pictures == before { videoFailed = true }
                case .fullDecode:
                    try ffmpeg(.decode, uri, decoder: video) { () throws(FFmpegError) in try video.send(packet.pointer) }
                    try drainVideo()
                }
            } else if current.stream_index == audioIndex, !audioDone, let audio {
                // A damaged audio packet is skipped (as players do); only audio that
                // never decodes at all makes the item invalid.
                do throws(ItemFailure) {
                    try ffmpeg(.decode, uri) { () throws(FFmpegError) in try audio.send(packet.pointer) }
                    try drainAudio()
                } catch where error.failureClass == .mediaInvalid {
                    audioErrors += 1
                    lastAudioError = error
                }
                if pass.audio.count >= audioLimit {
                    audioDone = true
                    input.stream(current.stream_index).pointee.discard = AVDISCARD_ALL
                    if videoIndex == nil { break }
                }
            }
        }

        // Drain what the decoders still hold.
        if let video, mode == .fullDecode {
            try ffmpeg(.decode, uri, decoder: video) { () throws(FFmpegError) in try video.send(nil) }
            try drainVideo()
        }
        if let audio, let resampler, !audioDone {
            try ffmpeg(.decode, uri) { () throws(FFmpegError) in try audio.send(nil) }
            try drainAudio()
            try ffmpeg(.decode, uri) { () throws(FFmpegError) in try resampler.convert(nil, appendingTo: &pass.audio, limit: audioLimit) }
        }
        if let lastAudioError, pass.audio.isEmpty {
            throw .invalid("\(uri): none of the audio decodes (\(audioErrors) damaged packets; last: \(lastAudioError.message))")
        }
        pass.frames = sampler.finish(pass.frames)
        if mode == .keyPacketsOnly, video != nil {
            let noPicture = pass.frames.isEmpty && (sentKeyframes > 0 || pass.keyframeCount == 0)
            pass.needsFullDecode = videoFailed || noPicture
        }
        return pass
    }

    // MARK: - Helpers

    private func receiveImage(_ decoder: StreamDecoder, uri: String, timeBase: AVRational?) throws(ItemFailure) -> RGBImage? {
        guard try ffmpeg(.decode, uri, decoder: decoder, { () throws(FFmpegError) in try decoder.receive() }) else { return nil }
        try checkPixels(decoder.frame, uri)
        return try ffmpeg(.decode, uri) { () throws(FFmpegError) in
            try FrameConverter(scaling: configuration.frameScaling).rgbImage(from: decoder.frame, timestampSeconds: nil)
        }
    }

    /// Clockwise degrees a player turns the picture by (phone videos are often
    /// stored landscape with a display matrix), computed as the ffmpeg CLI's
    /// autorotation does.
    private func displayRotation(of stream: UnsafeMutablePointer<AVStream>) -> Int {
        var size: Int = 0
        guard let data = av_stream_get_side_data(stream, AV_PKT_DATA_DISPLAYMATRIX, &size), size >= 9 * 4 else { return 0 }
        let degrees = data.withMemoryRebound(to: Int32.self, capacity: 9) { av_display_rotation_get($0) }
        guard degrees.isFinite else { return 0 }
        var theta = -degrees.rounded()
        theta -= 360 * (theta / 360 + 0.9 / 360).rounded(.down)
        return Int(theta)
    }

    private func checkPixels(_ frame: UnsafeMutablePointer<AVFrame>, _ uri: String) throws(ItemFailure) {
        let pixels = Int(frame.pointee.width) * Int(frame.pointee.height)
        if pixels > configuration.maxPixelsPerFrame {
            throw .tooLarge("\(uri) has a \(frame.pointee.width)x\(frame.pointee.height) frame, more than \(configuration.maxPixelsPerFrame) pixels")
        }
    }

    private func timestamp(_ pts: Int64, _ timeBase: AVRational) -> Double? {
        pts == ember_av_nopts_value() ? nil : Double(pts) * av_q2d(timeBase)
    }

    /// Runs FFmpeg-level work and classifies its failure. A decoder that refused a
    /// picture larger than `maxPixelsPerFrame` (its size is known by then) is
    /// `media_too_large`, not invalid data.
    private func ffmpeg<T>(
        _ phase: MediaInput.Phase, _ uri: String, decoder: StreamDecoder? = nil, _ body: () throws(FFmpegError) -> T
    ) throws(ItemFailure) -> T {
        do {
            return try body()
        } catch {
            if let decoder {
                let (width, height) = (decoder.context.pointee.width, decoder.context.pointee.height)
                if Int(width) * Int(height) > configuration.maxPixelsPerFrame {
                    throw .tooLarge("\(uri) declares \(width)x\(height) frames, more than \(configuration.maxPixelsPerFrame) pixels")
                }
            }
            throw MediaInput.classify(error.code, phase, "\(error.operation) (\(uri))", nil, remote: false)
        }
    }
}
