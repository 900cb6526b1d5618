import ArgumentParser
import EmberMedia
import Foundation

/// `ember bench decode`: keyframes/s and audio-seconds/s of EmberMedia against the
/// ffmpeg CLI on the same clips, measured side by side in one run and reported as
/// ratios (the machine may be shared, so absolute numbers move; ratios less so).
struct BenchDecode: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode",
        abstract: "EmberMedia keyframe and audio decoding vs `ffmpeg -skip_frame nokey … -f null -`.")

    @Option(name: .customLong("clip"), help: "A clip to measure (repeatable). Default: generated 720p H.264/AAC and VP9/Opus clips.")
    var clips: [String] = []
    @Option(help: "Runs per measurement; the median is reported.") var repeats: Int = 3
    @Option(help: "Decoder threads for both EmberMedia and the CLI.") var threads: Int = 1
    @Option(help: "Where generated clips are kept.") var workDirectory: String = NSTemporaryDirectory() + "ember-bench-decode"

    private var cliStartup: Double = 0

    mutating func run() throws {
        FFmpegLogLevel.current = .error
        let paths = clips.isEmpty ? try generateClips() : clips.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        print("EmberMedia vs ffmpeg CLI, \(threads) decoder thread(s), median of \(repeats); ratio > 1 means EmberMedia is faster")
        // What every CLI invocation pays before decoding (loading ~100 libraries):
        // reported so the ratio can also be read without it.
        cliStartup = try median { try ffmpeg(["-f", "lavfi", "-i", "nullsrc=s=16x16", "-frames:v", "1", "-f", "null", "-"]) }
        print(String(format: "ffmpeg CLI start-up (trivial run): %.1f ms", cliStartup * 1000))
        for path in paths {
            try measure(path)
        }
    }

    private func measure(_ path: String) throws {
        var configuration = MediaConfiguration()
        configuration.uriPolicy = URIPolicy(mediaRoot: "/")
        configuration.decoderThreads = threads
        configuration.maxDurationSeconds = 24 * 3600
        configuration.maxBytes = .max

        // Every keyframe, converted to RGB at the default 256 shorter side; no audio.
        var keyframesOnly = configuration
        keyframesOnly.maxFrames = 1_000_000
        keyframesOnly.maxAudioSeconds = 0
        // All of the audio, no video.
        var audioOnly = configuration
        audioOnly.maxFrames = 0
        audioOnly.maxAudioSeconds = 24 * 3600
        // What the worker does per item: 8 keyframes and 30 s of audio.
        let production = configuration

        let probe = try MediaDecoder(configuration: keyframesOnly).decodeVideo(uri: path)
        let audioProbe = try MediaDecoder(configuration: audioOnly).decodeVideo(uri: path)
        let keyframes = Double(probe.frames.count)
        let audioSeconds = audioProbe.audioSeconds
        let name = (path as NSString).lastPathComponent
        print("\n\(name): \(Int(keyframes)) keyframes, \(String(format: "%.1f", audioSeconds)) s of audio, \(String(format: "%.1f", probe.durationSeconds ?? 0)) s long")

        let threadArguments = ["-threads", String(threads)]
        if keyframes > 0 {
            let swift = try median { _ = try MediaDecoder(configuration: keyframesOnly).decodeVideo(uri: path) }
            let cli = try median { try ffmpeg(threadArguments + ["-skip_frame", "nokey", "-i", path, "-an", "-f", "null", "-"]) }
            report("keyframes/s", swift: keyframes / swift, cli: keyframes / cli, cliWithoutStartup: keyframes / max(1e-6, cli - cliStartup))
        }
        if audioSeconds > 0 {
            let swift = try median { _ = try MediaDecoder(configuration: audioOnly).decodeVideo(uri: path) }
            let cli = try median { try ffmpeg(["-i", path, "-vn", "-ac", "1", "-ar", "16000", "-f", "null", "-"]) }
            report("audio s/s", swift: audioSeconds / swift, cli: audioSeconds / cli, cliWithoutStartup: audioSeconds / max(1e-6, cli - cliStartup))
        }
        let item = try median { _ = try MediaDecoder(configuration: production).decodeVideo(uri: path) }
        print(String(format: "  %-12@ %9.1f items/s (8 keyframes + %.0f s audio per item, %.1f ms each)",
            "worker path" as NSString, 1 / item, min(30, audioSeconds), item * 1000))
    }

    private func report(_ what: String, swift: Double, cli: Double, cliWithoutStartup: Double) {
        print(String(format: "  %-12@ EmberMedia %9.1f   ffmpeg CLI %9.1f   ratio %5.2fx   (CLI without start-up %9.1f, ratio %5.2fx)",
            what as NSString, swift, cli, swift / cli, cliWithoutStartup, swift / cliWithoutStartup))
    }

    /// Median wall time in seconds of `repeats` runs, after one warm-up run.
    private func median(_ body: () throws -> Void) throws -> Double {
        try body()
        var times: [Double] = []
        for _ in 0..<max(1, repeats) {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return times.sorted()[times.count / 2]
    }

    @discardableResult
    private func ffmpeg(_ arguments: [String]) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"] + arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ValidationError("ffmpeg \(arguments.joined(separator: " ")) exited with \(process.terminationStatus)")
        }
        return process.terminationStatus
    }

    /// 60 s 720p H.264/AAC and 20 s 720p VP9/Opus, a keyframe every 2 s.
    private func generateClips() throws -> [String] {
        try FileManager.default.createDirectory(atPath: workDirectory, withIntermediateDirectories: true)
        let specs: [(String, [String])] = [
            ("h264-720p-60s.mp4", [
                "-f", "lavfi", "-i", "testsrc2=s=1280x720:r=25:d=60", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=60",
                "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-x264-params", "keyint=50:min-keyint=50:scenecut=0",
                "-c:a", "aac", "-shortest", "-movflags", "+faststart",
            ]),
            ("vp9-720p-20s.webm", [
                "-f", "lavfi", "-i", "testsrc2=s=1280x720:r=25:d=20", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=20",
                "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-g", "50", "-keyint_min", "50",
                "-c:a", "libopus", "-shortest",
            ]),
        ]
        return try specs.map { name, arguments in
            let path = workDirectory + "/" + name
            if !FileManager.default.fileExists(atPath: path) {
                print("generating \(name) …")
                try ffmpeg(arguments + [path])
            }
            return path
        }
    }
}
