import CFFmpeg

#if canImport(Glibc)
    import Glibc
#endif

/// Bounds applied while opening and reading one input.
struct InputLimits {
    var openTimeoutSeconds: Double
    var readTimeoutSeconds: Double
    var totalTimeoutSeconds: Double
    var maxBytes: Int64
    var maxDurationSeconds: Double
    var maxPixelsPerFrame: Int
    var allowedFormats: [String]

    init(_ configuration: MediaConfiguration) {
        openTimeoutSeconds = configuration.openTimeoutSeconds
        readTimeoutSeconds = configuration.readTimeoutSeconds
        totalTimeoutSeconds = configuration.totalTimeoutSeconds
        maxBytes = configuration.maxBytes
        maxDurationSeconds = configuration.maxDurationSeconds
        maxPixelsPerFrame = configuration.maxPixelsPerFrame
        allowedFormats = configuration.allowedFormats
    }
}

/// Demuxers that open further URLs named inside the file. Refused as
/// `forbidden_uri` unless the configuration lists them explicitly. (`image2`,
/// picked by file extension for undecodable images, is merely not accepted:
/// `media_invalid`.)
let referencingFormats: Set<String> = ["hls", "applehttp", "concat", "dash", "tee", "ffmetadata", "sdp", "rtsp", "rtp"]

/// An opened container (`AVFormatContext`) read through our own `AVIOContext`,
/// with streams probed. The interrupt callback enforces the timeouts and the byte
/// limit inside every blocking FFmpeg call. Everything is released on deinit, and
/// on every failure path of init.
final class MediaInput {
    let context: UnsafeMutablePointer<AVFormatContext>
    let watchdog: Watchdog
    private var io: UnsafeMutablePointer<AVIOContext>?
    /// The URI as the caller gave it, for messages.
    let displayURI: String
    let limits: InputLimits
    /// Fetched over the network (transient errors are possible) rather than from a file.
    private(set) var isRemote = true

    /// `policy` re-checks where an HTTP redirect led (FFmpeg follows up to 8).
    init(_ resolved: URIPolicy.Resolved, displayURI: String, limits: InputLimits, policy: URIPolicy? = nil) throws(ItemFailure) {
        self.displayURI = displayURI
        self.limits = limits
        let watchdog = Watchdog(limits)
        self.watchdog = watchdog
        var interrupt = AVIOInterruptCB(
            callback: { opaque in
                guard let opaque else { return 0 }
                return Unmanaged<Watchdog>.fromOpaque(opaque).takeUnretainedValue().shouldInterrupt() ? 1 : 0
            },
            opaque: Unmanaged.passUnretained(watchdog).toOpaque())

        // 1. Open the byte stream, only through the whitelisted protocols, and for
        // http(s) only through the pinning proxy (see PinnedEgress).
        var ioOptions: OpaquePointer? = nil
        av_dict_set(&ioOptions, "protocol_whitelist", resolved.protocolWhitelist, 0)
        if resolved.isRemote {
            guard let pin = resolved.pin else { throw .forbidden("\(displayURI): remote URI without vetted addresses") }
            // FFmpeg skips any proxy for hosts matching the no_proxy environment variable.
            if let noProxy = getenv("no_proxy"), noProxy.pointee != 0 {
                throw .forbidden("\(displayURI): no_proxy is set in the environment, which would let FFmpeg bypass address pinning")
            }
            let egress = try PinnedEgress(
                policy: policy ?? URIPolicy(allowedHosts: [pin.host]), pin: pin, connectTimeoutSeconds: limits.openTimeoutSeconds)
            watchdog.egress = egress
            av_dict_set(&ioOptions, "http_proxy", egress.proxyURL, 0)
            av_dict_set(&ioOptions, "user_agent", "ember-media", 0)
            av_dict_set(&ioOptions, "rw_timeout", String(Int64(limits.readTimeoutSeconds * 1e6)), 0)
        }
        var io: UnsafeMutablePointer<AVIOContext>? = nil
        let opened = avio_open2(&io, resolved.ffmpegURL, AVIO_FLAG_READ, &interrupt, &ioOptions)
        av_dict_free(&ioOptions)
        guard opened >= 0, let io else {
            throw Self.classify(opened, .open, "open \(displayURI)", watchdog, remote: resolved.isRemote)
        }
        watchdog.io = io

        func closeIO() {
            var owned: UnsafeMutablePointer<AVIOContext>? = io
            avio_closep(&owned)
        }

        // FFmpeg follows HTTP redirects itself, each through the pinning proxy, which
        // has vetted the new host before connecting. Judge the final URI as a whole
        // too (scheme, user info, allow-list) before a byte of the answer is used.
        if resolved.isRemote, let policy {
            var location: UnsafeMutablePointer<UInt8>? = nil
            if av_opt_get(io, "location", AV_OPT_SEARCH_CHILDREN, &location) >= 0, let location {
                let target = String(cString: location)
                av_free(location)
                if target != resolved.ffmpegURL {
                    do {
                        _ = try policy.resolve(target)
                    } catch {
                        closeIO()
                        throw error.failureClass == .forbiddenURI ? .forbidden("\(displayURI) redirects to a forbidden URI: \(error.message)") : error
                    }
                }
            }
        }

        let size = avio_size(io)
        if size > limits.maxBytes {
            closeIO()
            throw .tooLarge("\(displayURI) is \(size) bytes, more than the limit of \(limits.maxBytes)")
        }

        // 2. Probe the container format ourselves, so a refused demuxer never runs.
        // By content only: with the file name FFmpeg prefers the `image2` sequence
        // demuxer for `cover.jpg` (refused: its patterns open other files), and a name
        // chosen by an uploader should not pick the demuxer anyway.
        var format: UnsafePointer<AVInputFormat>? = nil
        let probed = av_probe_input_buffer2(io, &format, "", nil, 0, 0)
        guard probed >= 0, let format else {
            let error = Self.classify(
                probed == ember_averror_eof() ? ember_averror_invaliddata() : probed, .probe, "probe \(displayURI)", watchdog,
                remote: resolved.isRemote)
            closeIO()
            throw error
        }
        let formatName = String(cString: format.pointee.name)
        let names = formatName.split(separator: ",").map(String.init)
        guard names.contains(where: limits.allowedFormats.contains) else {
            closeIO()
            if names.contains(where: referencingFormats.contains) {
                throw .forbidden("\(displayURI) is a '\(formatName)' file, which references other resources")
            }
            throw .invalid("\(displayURI): container format '\(formatName)' is not accepted")
        }

        // 3. Open the demuxer on our byte stream and read the stream headers.
        guard var context = avformat_alloc_context() else {
            closeIO()
            throw ItemFailure(.mediaUnavailable, "out of memory opening \(displayURI)", isTransient: true)
        }
        context.pointee.pb = io
        context.pointee.flags |= AVFMT_FLAG_CUSTOM_IO
        context.pointee.interrupt_callback = interrupt
        var formatOptions: OpaquePointer? = nil
        // Defence in depth: nested opens by the demuxer obey the same whitelists.
        av_dict_set(&formatOptions, "protocol_whitelist", resolved.protocolWhitelist, 0)
        av_dict_set(&formatOptions, "format_whitelist", limits.allowedFormats.joined(separator: ","), 0)
        var optional: UnsafeMutablePointer<AVFormatContext>? = context
        // On failure avformat_open_input frees the context (not our AVIOContext).
        let status = avformat_open_input(&optional, resolved.ffmpegURL, format, &formatOptions)
        av_dict_free(&formatOptions)
        guard status >= 0, let openedContext = optional else {
            let error = Self.classify(status, .probe, "open container \(displayURI)", watchdog, remote: resolved.isRemote)
            closeIO()
            throw error
        }
        context = openedContext
        self.context = context
        self.io = io
        self.isRemote = resolved.isRemote
        // From here on deinit releases everything.

        try findStreamInfo()
        watchdog.opened()

        if let duration = durationSeconds, duration > limits.maxDurationSeconds {
            throw .tooLarge("\(displayURI) lasts \(Self.format(duration)) s, more than the limit of \(Self.format(limits.maxDurationSeconds)) s")
        }
        for index in 0..<Int32(context.pointee.nb_streams) {
            let parameters = stream(index).pointee.codecpar.pointee
            guard parameters.codec_type == AVMEDIA_TYPE_VIDEO else { continue }
            let pixels = Int(parameters.width) * Int(parameters.height)
            if pixels > limits.maxPixelsPerFrame {
                throw .tooLarge("\(displayURI) has \(parameters.width)x\(parameters.height) frames, more than \(limits.maxPixelsPerFrame) pixels")
            }
        }
    }

    deinit {
        var owned: UnsafeMutablePointer<AVFormatContext>? = context
        avformat_close_input(&owned)
        avio_closep(&io)
    }

    /// Probes the streams with the per-frame pixel limit already in force in the
    /// decoders avformat opens for probing.
    private func findStreamInfo() throws(ItemFailure) {
        let count = Int(context.pointee.nb_streams)
        let options = UnsafeMutablePointer<OpaquePointer?>.allocate(capacity: max(count, 1))
        options.initialize(repeating: nil, count: max(count, 1))
        defer {
            for index in 0..<max(count, 1) { av_dict_free(&options[index]) }
            options.deallocate()
        }
        for index in 0..<count {
            av_dict_set(&options[index], "max_pixels", String(limits.maxPixelsPerFrame), 0)
            av_dict_set(&options[index], "threads", "1", 0)
        }
        let status = avformat_find_stream_info(context, options)
        if status < 0 { throw Self.classify(status, .probe, "probe streams of \(displayURI)", watchdog, remote: isRemote) }
    }

    /// Container duration in seconds, when known.
    var durationSeconds: Double? {
        let duration = context.pointee.duration
        guard duration != ember_av_nopts_value(), duration > 0 else { return nil }
        return Double(duration) / Double(ember_av_time_base())
    }

    /// Container start time in seconds (0 when unknown).
    var startSeconds: Double {
        let start = context.pointee.start_time
        return start == ember_av_nopts_value() ? 0 : Double(start) / Double(ember_av_time_base())
    }

    /// Index of the best stream of a media type, or nil when there is none.
    func bestStream(_ type: AVMediaType) -> Int32? {
        let index = av_find_best_stream(context, type, -1, -1, nil, 0)
        return index >= 0 ? index : nil
    }

    func stream(_ index: Int32) -> UnsafeMutablePointer<AVStream> {
        context.pointee.streams[Int(index)]!
    }

    /// Bytes read from the source so far.
    var bytesRead: Int64 { io?.pointee.bytes_read ?? 0 }

    /// Reads the next packet into `packet`; returns false at end of file.
    func readPacket(into packet: UnsafeMutablePointer<AVPacket>) throws(ItemFailure) -> Bool {
        watchdog.blockingCallStarts()
        let status = av_read_frame(context, packet)
        if bytesRead > limits.maxBytes {
            throw .tooLarge("\(displayURI): read more than the limit of \(limits.maxBytes) bytes")
        }
        if status == ember_averror_eof() { return false }
        if status < 0 { throw Self.classify(status, .read, "read \(displayURI)", watchdog, remote: isRemote) }
        return true
    }

    // MARK: - Errors

    enum Phase { case open, probe, read, decode }

    /// Turns an FFmpeg status into the dead-letter class and retry decision.
    static func classify(_ status: Int32, _ phase: Phase, _ operation: String, _ watchdog: Watchdog?, remote: Bool = true) -> ItemFailure {
        let detail = FFmpegError(code: status, operation: operation).description
        if let refused = watchdog?.egress?.refused {
            // Only hosts other than the vetted one reach the proxy's check: redirect targets.
            return .forbidden("\(operation): redirects to a forbidden host: \(refused.message)")
        }
        if let reason = watchdog?.reason {
            switch reason {
            case .tooManyBytes:
                return .tooLarge("\(operation): read more than the limit of \(watchdog?.maxBytes ?? 0) bytes")
            case .openTimeout, .stalled, .totalTimeout:
                return ItemFailure(.mediaUnavailable, "\(operation): \(reason.rawValue)", isTransient: true)
            }
        }
        let transientErrnos = [ETIMEDOUT, ECONNREFUSED, ECONNRESET, ECONNABORTED, EHOSTUNREACH, ENETUNREACH, ENETDOWN, EPIPE, EIO, EAGAIN, EINTR]
        switch status {
        case ember_averror_http_not_found(), ember_averror_http_forbidden(), ember_averror_http_unauthorized(),
            ember_averror_http_bad_request(), ember_averror_http_other_4xx():
            return ItemFailure(.mediaUnavailable, detail)
        case ember_averror_http_server_error(), ember_averror_exit():
            return ItemFailure(.mediaUnavailable, detail, isTransient: true)
        case ember_averror_protocol_not_found():
            return .forbidden(detail)
        case _ where remote && transientErrnos.contains(where: { ember_averror_errno($0) == status }):
            return ItemFailure(.mediaUnavailable, detail, isTransient: true)
        case ember_averror_errno(ENOENT), ember_averror_errno(EACCES), ember_averror_errno(EISDIR):
            return ItemFailure(.mediaUnavailable, detail)
        case ember_averror_errno(ENOMEM):
            return .invalid(detail)
        default:
            // A local file that opened but cannot be read through is broken, not unavailable.
            return phase == .open ? ItemFailure(.mediaUnavailable, detail) : .invalid(detail)
        }
    }

    static func format(_ seconds: Double) -> String {
        let tenths = (seconds * 10).rounded() / 10
        return tenths == tenths.rounded() ? String(Int(tenths)) : String(tenths)
    }
}

/// State behind the AVIO interrupt callback: FFmpeg calls `shouldInterrupt()`
/// from inside blocking reads on the decoding thread, so no locking is needed.
/// Owned by `MediaInput`, which outlives every FFmpeg call that can reach it.
final class Watchdog {
    enum Reason: String {
        case openTimeout = "timed out while opening"
        case stalled = "no data received within the read timeout"
        case totalTimeout = "exceeded the total decode time budget"
        case tooManyBytes = "read more than the byte limit"
    }

    private(set) var reason: Reason?
    var io: UnsafeMutablePointer<AVIOContext>?
    /// The remote input's pinning proxy; shut down with the input.
    var egress: PinnedEgress?
    let maxBytes: Int64
    private var openDeadline: UInt64
    private let totalDeadline: UInt64
    private let stallNanoseconds: UInt64
    private var lastProgress: UInt64
    private var lastBytes: Int64 = 0

    init(_ limits: InputLimits) {
        let now = Self.now()
        maxBytes = limits.maxBytes
        openDeadline = now + Self.nanoseconds(limits.openTimeoutSeconds)
        totalDeadline = now + Self.nanoseconds(limits.totalTimeoutSeconds)
        stallNanoseconds = Self.nanoseconds(limits.readTimeoutSeconds)
        lastProgress = now
    }

    /// Headers are read: from now on only the stall and total limits apply.
    func opened() { openDeadline = .max }

    /// Called before each packet read, so decoding time between reads is never
    /// mistaken for a stalled source.
    func blockingCallStarts() {
        lastProgress = Self.now()
        lastBytes = io?.pointee.bytes_read ?? 0
    }

    func shouldInterrupt() -> Bool {
        if reason != nil { return true }
        let now = Self.now()
        let bytes = io?.pointee.bytes_read ?? 0
        if bytes != lastBytes {
            lastBytes = bytes
            lastProgress = now
        }
        if bytes > maxBytes {
            reason = .tooManyBytes
        } else if now > openDeadline {
            reason = .openTimeout
        } else if now > totalDeadline {
            reason = .totalTimeout
        } else if now - lastProgress > stallNanoseconds {
            reason = .stalled
        }
        return reason != nil
    }

    deinit { egress?.shutdown() }

    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    static func nanoseconds(_ seconds: Double) -> UInt64 {
        seconds >= 1e9 ? .max / 2 : UInt64(max(0, seconds) * 1e9)
    }
}
