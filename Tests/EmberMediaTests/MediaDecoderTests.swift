import Foundation
import Testing
@testable import EmberMedia

@Suite("Media decoding")
struct MediaDecoderTests {
    let decoder = MediaDecoder(configuration: MediaFixtures.configuration())

    /// Decodes `path` with every keyframe kept and checks the keyframes against
    /// ffprobe and the pixels of one of them against the ffmpeg CLI.
    private func checkKeyframes(
        _ path: String, expected: [Double], pixelCheckAt: Double? = nil, tolerance: (max: Int, mean: Double) = (3, 0.5)
    ) throws -> DecodedMedia {
        let media = try decoder.decodeVideo(uri: path)
        let probed = try MediaFixtures.probeKeyframes(path)
        #expect(probed.count == expected.count, "ffprobe keyframes \(probed)")
        #expect(media.keyframeCount == expected.count)
        #expect(media.frames.count == expected.count)
        let timestamps = media.frames.compactMap(\.timestampSeconds)
        #expect(timestamps.count == expected.count)
        for (got, want) in zip(timestamps, expected) { #expect(abs(got - want) < 0.011, "timestamps \(timestamps)") }
        for (got, want) in zip(timestamps, probed) { #expect(abs(got - want) < 0.0011, "timestamps \(timestamps) vs ffprobe \(probed)") }

        if let seconds = pixelCheckAt, let frame = media.frames.first(where: { abs(($0.timestampSeconds ?? -1) - seconds) < 0.011 }) {
            let reference = [UInt8](try MediaFixtures.cliFrame(path, at: seconds))
            let difference = pixelDifference(frame.pixels, reference)
            #expect(difference.max <= tolerance.max && difference.mean <= tolerance.mean,
                "frame at \(seconds) s vs ffmpeg CLI: max \(difference.max), mean \(difference.mean)")
        } else if pixelCheckAt != nil {
            Issue.record("no decoded frame at \(pixelCheckAt!) s")
        }
        return media
    }

    @Test("H.264/AAC: every keyframe, same pixels as the ffmpeg CLI, 16 kHz mono audio")
    func h264() throws {
        let media = try checkKeyframes(try MediaFixtures.h264(), expected: [0, 1, 2, 3], pixelCheckAt: 2)
        #expect(!media.usedFullDecode)
        #expect(media.frames.allSatisfy { $0.width == 320 && $0.height == 240 })
        #expect(abs((media.durationSeconds ?? 0) - 4) < 0.1)
        #expect(media.audioSampleRate == 16_000)
        #expect(abs(media.audioSeconds - 4) < 0.05, "audio seconds \(media.audioSeconds)")
        let rms = Self.rms(media.audio[8_000..<56_000])
        #expect(abs(rms - 0.0884) < 0.01, "RMS \(rms)")
        #expect(abs(Self.zeroCrossingsPerSecond(media.audio[8_000..<56_000]) - 880) < 10)
    }

    @Test("VP9/Opus in WebM")
    func vp9() throws {
        let media = try checkKeyframes(try MediaFixtures.vp9(), expected: [0.007, 1.007, 2.007, 3.007], pixelCheckAt: 1.007)
        #expect(!media.usedFullDecode)
        #expect(abs(media.audioSeconds - 4) < 0.05, "audio seconds \(media.audioSeconds)")
        #expect(abs(Self.zeroCrossingsPerSecond(media.audio[8_000..<56_000]) - 880) < 10)
    }

    @Test("open GOP: non-IDR keyframes decode to the same pixels as a full decode")
    func openGOP() throws {
        let path = try MediaFixtures.openGOP()
        let media = try checkKeyframes(path, expected: [0, 1, 2, 3], pixelCheckAt: 3)
        _ = try checkKeyframes(path, expected: [0, 1, 2, 3], pixelCheckAt: 1)
        #expect(media.audio.isEmpty)
        #expect(!media.usedFullDecode, "recovery-point keyframes decode on their own")
    }

    @Test("the full-decode fallback picks the same keyframes with the same pixels")
    func fullDecodePath() throws {
        // The fallback runs when a keyframe yields no picture or a decoder error on its
        // own; here it is forced, and must agree with the keyframe-only path.
        for path in [try MediaFixtures.h264(), try MediaFixtures.openGOP(), try MediaFixtures.vp9()] {
            let fast = try decoder.decodeVideo(uri: path)
            let full = try decoder.decodeVideo(uri: path, forceFullDecode: true)
            #expect(full.usedFullDecode && !fast.usedFullDecode)
            #expect(full.keyframeCount == fast.keyframeCount)
            #expect(full.frames.map(\.timestampSeconds) == fast.frames.map(\.timestampSeconds), "\(path)")
            for (a, b) in zip(full.frames, fast.frames) {
                let difference = pixelDifference(a.pixels, b.pixels)
                #expect(difference.max == 0, "\(path) at \(a.timestampSeconds ?? -1): max \(difference.max)")
            }
            #expect(full.audio == fast.audio)
        }
    }

    @Test("video without audio, audio without video")
    func missingStreams() throws {
        let video = try checkKeyframes(try MediaFixtures.noAudio(), expected: [0, 1, 2])
        #expect(video.audio.isEmpty)
        #expect(video.audioSeconds == 0)

        let audio = try decoder.decodeVideo(uri: try MediaFixtures.audioOnly())
        #expect(audio.frames.isEmpty)
        #expect(audio.keyframeCount == 0)
        #expect(abs(audio.audioSeconds - 2.5) < 0.05)
        #expect(abs(Self.zeroCrossingsPerSecond(audio.audio[4_000...]) - 880) < 10)
    }

    @Test("a single keyframe gives a single frame")
    func oneKeyframe() throws {
        let media = try checkKeyframes(try MediaFixtures.oneKeyframe(), expected: [0], pixelCheckAt: 0)
        #expect(abs((media.durationSeconds ?? 0) - 3) < 0.1)
    }

    @Test("portrait, tiny and 4K frames keep their shape, or are scaled to the shorter side")
    func sizes() throws {
        let portrait = try checkKeyframes(try MediaFixtures.portrait(), expected: [0, 1], pixelCheckAt: 1)
        #expect(portrait.frames.allSatisfy { $0.width == 240 && $0.height == 426 })
        let tiny = try checkKeyframes(try MediaFixtures.tiny(), expected: [0, 1], pixelCheckAt: 0, tolerance: (6, 1.5))
        #expect(tiny.frames.allSatisfy { $0.width == 16 && $0.height == 16 })
        let uhd = try checkKeyframes(try MediaFixtures.uhd(), expected: [0], pixelCheckAt: 0)
        #expect(uhd.frames.first?.width == 3840 && uhd.frames.first?.height == 2160)

        // Scaled once, to the preprocessing's size (torchvision Resize: longer side truncated).
        let scaling = MediaDecoder(configuration: MediaFixtures.configuration(scaling: MediaFixtures.lite0))
        let small = try scaling.decodeVideo(uri: try MediaFixtures.uhd())
        #expect(small.frames.first.map { ($0.width, $0.height) } ?? (0, 0) == (455, 256))
        let tall = try scaling.decodeVideo(uri: try MediaFixtures.portrait())
        #expect(tall.frames.first.map { ($0.width, $0.height) } ?? (0, 0) == (256, 454), "scaled up as torchvision does")
        var smaller = MediaFixtures.lite0
        (smaller.size, smaller.resizeShorterSide) = (100, 120)
        let half = MediaDecoder(configuration: MediaFixtures.configuration(scaling: smaller))
        #expect(try half.decodeVideo(uri: try MediaFixtures.portrait()).frames.first.map { ($0.width, $0.height) } ?? (0, 0) == (120, 213))
    }

    @Test("rotated phone video is turned upright, as the ffmpeg CLI shows it", arguments: [90, 180, 270])
    func rotation(degrees: Int) throws {
        let source = try MediaFixtures.noAudio()
        let path = try MediaFixtures.make("rotate-\(degrees).mp4", ["-i", source, "-c", "copy", "-metadata:s:v:0", "rotate=\(degrees)"])
        let media = try decoder.decodeVideo(uri: path)
        let frame = try #require(media.frames.first)
        #expect(degrees == 180 ? (frame.width, frame.height) == (320, 240) : (frame.width, frame.height) == (240, 320))
        let reference = [UInt8](try MediaFixtures.cliFrame(path, at: 0))
        let difference = pixelDifference(frame.pixels, reference)
        #expect(difference.max <= 3 && difference.mean <= 0.5, "rotate=\(degrees) vs CLI: max \(difference.max), mean \(difference.mean)")
    }

    @Test("up to N keyframes are sampled, spread over the duration")
    func sampling() throws {
        let clip = try MediaFixtures.make("ten-keyframes.mp4", ["-f", "lavfi", "-i", "testsrc2=s=160x120:r=25:d=10"] + MediaFixtures.x264Keyframes)
        let four = try MediaDecoder(configuration: MediaFixtures.configuration(maxFrames: 4)).decodeVideo(uri: clip)
        #expect(four.keyframeCount == 10)
        // Slots of 2.5 s: the first keyframe in each is at 0, 3, 5 and 8 s.
        #expect(four.frames.compactMap(\.timestampSeconds) == [0, 3, 5, 8])
        let one = try MediaDecoder(configuration: MediaFixtures.configuration(maxFrames: 1)).decodeVideo(uri: clip)
        #expect(one.frames.compactMap(\.timestampSeconds) == [0])
        let all = try MediaDecoder(configuration: MediaFixtures.configuration(maxFrames: 32)).decodeVideo(uri: clip)
        #expect(all.frames.compactMap(\.timestampSeconds) == (0..<10).map(Double.init))
    }

    @Test("the sampler thins evenly when the duration is unknown")
    func samplerWithoutDuration() {
        var sampler = KeyframeSampler(maxFrames: 3, start: 0, duration: nil)
        var kept: [Int] = []
        for keyframe in 0..<20 where sampler.wants(nil) {
            kept.append(keyframe)
            sampler.thin(&kept)
        }
        // Held after thinning: 0, 4, 8, 12, 16; three of them, ends included.
        #expect(sampler.finish(kept) == [0, 8, 16])
    }

    @Test("a stream without any duration is sampled evenly too")
    func unknownDuration() throws {
        // Matroska written to a pipe carries no duration at all.
        let data = try MediaFixtures.run("ffmpeg", ["-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=s=160x120:r=25:d=10"]
            + MediaFixtures.x264Keyframes + ["-f", "matroska", "-"])
        let path = try MediaFixtures.write("no-duration.mkv", data)
        let media = try MediaDecoder(configuration: MediaFixtures.configuration(maxFrames: 3)).decodeVideo(uri: path)
        #expect(media.durationSeconds == nil)
        #expect(media.keyframeCount == 10)
        #expect(media.frames.compactMap(\.timestampSeconds) == [0, 4, 8])
    }

    @Test("covers: JPEG, PNG and WebP through libavcodec")
    func covers() throws {
        for fileExtension in ["jpg", "png", "webp"] {
            let path = try MediaFixtures.cover(fileExtension)
            let media = try decoder.decode(videoURI: nil, coverURI: "file://" + path)
            let cover = try #require(media.cover)
            #expect(cover.width == 64 && cover.height == 48)
            let center = cover.pixel(x: 32, y: 24), corner = cover.pixel(x: 2, y: 2)
            #expect(center.r > 240 && center.g > 240 && center.b > 240, "\(fileExtension) centre \(center)")
            #expect(corner.r > 230 && abs(Int(corner.g) - 165) < 15 && corner.b < 30, "\(fileExtension) corner \(corner)")
        }
        let both = try decoder.decode(videoURI: try MediaFixtures.h264(), coverURI: try MediaFixtures.cover("png"))
        #expect(both.frames.count == 4 && both.cover != nil)
    }

    @Test("limits: pixels, duration, bytes and audio seconds")
    func limits() throws {
        var configuration = MediaFixtures.configuration()
        configuration.maxPixelsPerFrame = 1_000_000
        Self.expectClass(.mediaTooLarge, configuration) { _ = try $0.decodeVideo(uri: try MediaFixtures.uhd()) }

        configuration = MediaFixtures.configuration()
        configuration.maxDurationSeconds = 2
        Self.expectClass(.mediaTooLarge, configuration) { _ = try $0.decodeVideo(uri: try MediaFixtures.h264()) }

        configuration = MediaFixtures.configuration()
        configuration.maxBytes = 10_000
        Self.expectClass(.mediaTooLarge, configuration) { _ = try $0.decodeVideo(uri: try MediaFixtures.h264()) }

        configuration = MediaFixtures.configuration()
        configuration.maxAudioSeconds = 1.5
        let media = try MediaDecoder(configuration: configuration).decodeVideo(uri: try MediaFixtures.h264())
        #expect(media.audio.count == 24_000)
        #expect(media.frames.count == 4, "the video is still sampled in full")
    }

    @Test("one decoder shared by threads gives identical results")
    func concurrentDecodes() throws {
        let path = try MediaFixtures.h264()
        let reference = try decoder.decodeVideo(uri: path)
        let results = Results()
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            results.append(Result { () throws(ItemFailure) in try decoder.decodeVideo(uri: path) })
        }
        for result in results.all {
            let media = try result.get()
            #expect(media.frames == reference.frames)
            #expect(media.audio == reference.audio)
        }
    }

    final class Results: @unchecked Sendable {
        private let lock = NSLock()
        private var items: [Result<DecodedMedia, ItemFailure>] = []
        func append(_ item: Result<DecodedMedia, ItemFailure>) { lock.withLock { items.append(item) } }
        var all: [Result<DecodedMedia, ItemFailure>] { lock.withLock { items } }
    }

    static func expectClass(
        _ kind: FailureClass, _ configuration: MediaConfiguration, sourceLocation: SourceLocation = #_sourceLocation,
        _ body: (MediaDecoder) throws -> Void
    ) {
        do {
            try body(MediaDecoder(configuration: configuration))
            Issue.record("expected \(kind.rawValue), got success", sourceLocation: sourceLocation)
        } catch let error as ItemFailure {
            #expect(error.failureClass == kind, "\(error)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("expected ItemFailure, got \(error)", sourceLocation: sourceLocation)
        }
    }

    static func rms<C: Collection>(_ samples: C) -> Float where C.Element == Float {
        (samples.map { $0 * $0 }.reduce(0, +) / Float(samples.count)).squareRoot()
    }

    static func zeroCrossingsPerSecond<C: Collection>(_ samples: C) -> Double where C.Element == Float {
        let crossings = zip(samples, samples.dropFirst()).filter { ($0 < 0) != ($1 < 0) }.count
        return Double(crossings) * 16_000 / Double(samples.count - 1)
    }
}
