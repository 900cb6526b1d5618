import Foundation
import Testing
@testable import EmberMedia

@Suite("FFmpeg binding")
struct DecodeSmokeTests {
    @Test("decodes the first keyframe of an H.264 clip to the same RGB as the ffmpeg CLI")
    func firstKeyframeMatchesCLI() throws {
        let clip = try MediaFixtures.redClipWithTone()
        let image = try decodeFirstKeyframe(url: clip)
        #expect(image.width == 320)
        #expect(image.height == 240)
        #expect(image.timestampSeconds == 0)

        let reference = try MediaFixtures.run("ffmpeg", [
            "-nostdin", "-loglevel", "error", "-i", clip, "-frames:v", "1",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-",
        ])
        #expect(reference.count == image.pixels.count)
        let maxDiff = zip(reference, image.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 255
        #expect(maxDiff <= 2, "max per-channel difference to the ffmpeg CLI: \(maxDiff)")
        let center = image.pixel(x: 160, y: 120)
        #expect(center.r >= 250 && center.g <= 5 && center.b <= 5, "centre pixel \(center)")
    }

    @Test("decodes AAC audio to 16 kHz mono float")
    func audioResampledToMono16k() throws {
        let clip = try MediaFixtures.redClipWithTone()
        let samples = try decodeAudio(url: clip, sampleRate: 16_000, maxSeconds: 1)
        #expect(samples.count == 16_000)

        // lavfi's sine source has amplitude 1/8: RMS 0.125/sqrt(2) ≈ 0.088.
        let steady = samples[4_000...]
        let rms = (steady.map { $0 * $0 }.reduce(0, +) / Float(steady.count)).squareRoot()
        #expect(abs(rms - 0.088) < 0.01, "RMS \(rms)")

        // A 440 Hz tone crosses zero 880 times a second.
        let crossings = zip(steady, steady.dropFirst()).filter { ($0 < 0) != ($1 < 0) }.count
        let perSecond = Double(crossings) * 16_000 / Double(steady.count - 1)
        #expect(abs(perSecond - 880) < 10, "zero crossings per second \(perSecond)")
    }

    @Test("a missing file is an FFmpeg error, not a crash")
    func missingFile() {
        #expect(throws: FFmpegError.self) {
            try decodeFirstKeyframe(url: "/nonexistent/ember.mp4")
        }
    }

    @Test("a file without video reports that there is no video stream")
    func audioOnlyHasNoKeyframe() throws {
        let audioOnly = try MediaFixtures.make("tone.m4a", [
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000:duration=1", "-c:a", "aac",
        ])
        let error = #expect(throws: FFmpegError.self) { try decodeFirstKeyframe(url: audioOnly) }
        #expect(error?.operation.contains("video stream") == true)
    }
}
