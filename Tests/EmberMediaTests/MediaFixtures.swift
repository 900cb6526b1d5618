import EmberMedia
import Foundation

/// Media files made by the ffmpeg CLI at test time, once per test process, in one
/// directory that the tests use as the media root.
enum MediaFixtures {
    static let directory: URL = {
        // The broken-input corpus makes decoders complain; the typed errors are what we check.
        FFmpegLogLevel.current = .fatal
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ember-media-\(getpid())")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }()

    private static let lock = NSLock()

    /// Runs `ffmpeg <arguments> <file>` unless the file exists; returns its path.
    static func make(_ name: String, _ arguments: [String]) throws -> String {
        lock.lock()
        defer { lock.unlock() }
        let path = directory.appendingPathComponent(name).path
        if FileManager.default.fileExists(atPath: path) { return path }
        let partial = path + ".partial." + (name as NSString).pathExtension
        _ = try run("ffmpeg", ["-nostdin", "-hide_banner", "-loglevel", "error", "-y"] + arguments + [partial])
        try FileManager.default.moveItem(atPath: partial, toPath: path)
        return path
    }

    /// Writes `data` to a file in the fixture directory; returns its path.
    static func write(_ name: String, _ data: Data) throws -> String {
        let path = directory.appendingPathComponent(name).path
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    /// x264 with exactly one IDR keyframe per second (no scene-cut keyframes), B-frames on.
    static let x264Keyframes = ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-x264-params", "keyint=25:min-keyint=25:scenecut=0"]

    /// 4 s testsrc2 320x240 25 fps, keyframes at 0,1,2,3 s, H.264 + AAC 440 Hz, moov at the front.
    static func h264() throws -> String {
        try make("h264-aac.mp4", [
            "-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=4",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=4",
        ] + x264Keyframes + ["-c:a", "aac", "-shortest", "-movflags", "+faststart"])
    }

    /// The same picture as VP9 + Opus in WebM, keyframes every 25 frames.
    static func vp9() throws -> String {
        try make("vp9-opus.webm", [
            "-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=4",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=4",
            "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-g", "25", "-keyint_min", "25",
            "-c:a", "libopus", "-shortest",
        ])
    }

    /// 3 s of video, no audio stream.
    static func noAudio() throws -> String {
        try make("no-audio.mp4", ["-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=3"] + x264Keyframes)
    }

    /// 2.5 s of a 440 Hz tone only, AAC in M4A.
    static func audioOnly() throws -> String {
        try make("audio-only.m4a", ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=2.5", "-c:a", "aac"])
    }

    /// 3 s with a single keyframe at 0.
    static func oneKeyframe() throws -> String {
        try make("one-keyframe.mp4", [
            "-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=3",
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-x264-params", "keyint=1000:min-keyint=1000:scenecut=0",
        ])
    }

    /// Open GOP: one IDR, then non-IDR I-frames with recovery points every second, 3 B-frames.
    static func openGOP() throws -> String {
        try make("open-gop.mp4", [
            "-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=4",
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-bf", "3",
            "-x264-params", "keyint=25:min-keyint=25:scenecut=0:open-gop=1",
        ])
    }

    /// 240x426 portrait, 2 s, keyframes at 0 and 1 s.
    static func portrait() throws -> String {
        try make("portrait.mp4", ["-f", "lavfi", "-i", "testsrc2=s=240x426:r=25:d=2"] + x264Keyframes)
    }

    /// 16x16, 2 s.
    static func tiny() throws -> String {
        try make("tiny.mp4", ["-f", "lavfi", "-i", "testsrc2=s=16x16:r=25:d=2"] + x264Keyframes)
    }

    /// 3840x2160, 1 s at 5 fps, one keyframe.
    static func uhd() throws -> String {
        try make("uhd.mp4", [
            "-f", "lavfi", "-i", "testsrc2=s=3840x2160:r=5:d=1",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        ])
    }

    /// A 64x48 JPEG, PNG or WebP cover (solid orange with a white box).
    static func cover(_ fileExtension: String) throws -> String {
        try make("cover.\(fileExtension)", [
            "-f", "lavfi", "-i", "color=c=orange:s=64x48,drawbox=x=16:y=12:w=32:h=24:color=white:t=fill",
            "-frames:v", "1",
        ])
    }

    /// EfficientNet-Lite0's preprocessing as omni-small's manifest states it.
    static let lite0 = VisionPreprocessing(
        size: 224, resize: .centerCrop, resizeShorterSide: 256, interpolation: .bicubic,
        mean: [0.498, 0.498, 0.498], std: [0.502, 0.502, 0.502])

    /// A configuration whose media root is the fixture directory; full-size frames
    /// unless `scaling` is given.
    static func configuration(maxFrames: Int = 8, scaling: VisionPreprocessing? = nil) -> MediaConfiguration {
        var configuration = MediaConfiguration()
        configuration.uriPolicy = URIPolicy(mediaRoot: directory.path)
        configuration.maxFrames = maxFrames
        configuration.frameScaling = scaling
        return configuration
    }

    /// Key packets of the first video stream as ffprobe reports them: timestamps in seconds.
    static func probeKeyframes(_ path: String) throws -> [Double] {
        let output = try run("ffprobe", [
            "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags", "-of", "csv=p=0", path,
        ])
        return String(decoding: output, as: UTF8.self).split(separator: "\n").compactMap { line in
            let fields = line.split(separator: ",")
            guard fields.count >= 2, fields[1].hasPrefix("K") else { return nil }
            return Double(fields[0])
        }.sorted()
    }

    /// The frame at `seconds` as the ffmpeg CLI decodes it (accurate seek), packed RGB24.
    static func cliFrame(_ path: String, at seconds: Double) throws -> Data {
        try run("ffmpeg", [
            "-nostdin", "-loglevel", "error", "-ss", String(seconds), "-i", path, "-frames:v", "1",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-",
        ])
    }

    /// Runs a program and returns its standard output; throws when it exits non-zero.
    static func run(_ program: String, _ arguments: [String]) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [program] + arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        // Read stderr concurrently so a chatty program cannot fill its pipe and block.
        nonisolated(unsafe) var errorData = Data()
        let reader = Thread { errorData = errors.fileHandleForReading.readDataToEndOfFile() }
        reader.start()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while !reader.isFinished { usleep(1000) }
        guard process.terminationStatus == 0 else {
            throw FixtureError(message: "\(program) \(arguments.joined(separator: " ")) failed: \(String(decoding: errorData, as: UTF8.self))")
        }
        return data
    }
}

struct FixtureError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// Largest and mean absolute per-channel difference between two RGB24 buffers.
func pixelDifference(_ a: [UInt8], _ b: [UInt8]) -> (max: Int, mean: Double) {
    guard a.count == b.count, !a.isEmpty else { return (255, 255) }
    var largest = 0
    var total = 0
    for i in a.indices {
        let d = abs(Int(a[i]) - Int(b[i]))
        largest = max(largest, d)
        total += d
    }
    return (largest, Double(total) / Double(a.count))
}
