import Foundation

/// Media files made by the ffmpeg CLI at test time, once per test process.
enum MediaFixtures {
    static let directory: URL = {
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
        _ = try run("ffmpeg", ["-nostdin", "-hide_banner", "-loglevel", "error", "-y"] + arguments + [path])
        return path
    }

    /// 2 s of solid red 320x240 at 25 fps (keyframe every second) with a 440 Hz tone, H.264/AAC in MP4.
    static func redClipWithTone() throws -> String {
        try make("red-tone.mp4", [
            "-f", "lavfi", "-i", "color=c=red:s=320x240:d=2:r=25",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=2",
            "-c:v", "libx264", "-g", "25", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-shortest",
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
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
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
