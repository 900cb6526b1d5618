import Foundation
import Testing
@testable import EmberMedia

/// Hostile and broken uploads: each must give a typed error, never a crash. Run
/// under AddressSanitizer by `Ops/media-asan`.
@Suite("Broken inputs")
struct BrokenInputTests {
    let decoder = MediaDecoder(configuration: MediaFixtures.configuration())

    static func bytes(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }

    /// Decodes `path` as a video (and as a cover) and returns the error class.
    func failure(_ path: String, sourceLocation: SourceLocation = #_sourceLocation) -> ItemFailure? {
        let video = #expect(throws: ItemFailure.self, sourceLocation: sourceLocation) { try decoder.decodeVideo(uri: path) }
        let cover = #expect(throws: ItemFailure.self, sourceLocation: sourceLocation) { try decoder.decodeImage(uri: path) }
        #expect(cover?.failureClass == video?.failureClass, "cover \(String(describing: cover)) vs video \(String(describing: video))", sourceLocation: sourceLocation)
        return video
    }

    /// An MP4 with its index (moov) at the end, as the ffmpeg CLI writes it by default.
    static func moovAtEnd() throws -> String {
        try MediaFixtures.make("moov-at-end.mp4", ["-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=3",
            "-f", "lavfi", "-i", "sine=frequency=440:duration=3"] + MediaFixtures.x264Keyframes + ["-c:a", "aac", "-shortest"])
    }

    @Test("truncated files")
    func truncated() throws {
        let whole = try Self.bytes(try Self.moovAtEnd())
        let cut = try MediaFixtures.write("truncated.mp4", Data(whole.prefix(whole.count * 6 / 10)))
        #expect(failure(cut)?.failureClass == .mediaInvalid)
        let header = try MediaFixtures.write("truncated-header.mp4", Data(whole.prefix(20)))
        #expect(failure(header)?.failureClass == .mediaInvalid)
        let webm = try Self.bytes(try MediaFixtures.vp9())
        let cutWebm = try MediaFixtures.write("truncated-header.webm", Data(webm.prefix(200)))
        #expect(failure(cutWebm)?.failureClass == .mediaInvalid)
    }

    @Test("bit flips in the container header")
    func bitFlipped() throws {
        var bytes = try Self.bytes(try MediaFixtures.h264())  // faststart: the index comes first
        for i in stride(from: 40, to: min(bytes.count, 3000), by: 7) { bytes[i] ^= 0xA5 }
        let path = try MediaFixtures.write("bit-flipped.mp4", Data(bytes))
        let error = failure(path)
        #expect(error?.failureClass == .mediaInvalid, "\(String(describing: error))")
    }

    @Test("bit flips in the payload decode or fail with a typed error, bounded")
    func payloadFlips() throws {
        var bytes = try Self.bytes(try MediaFixtures.h264())
        var state: UInt32 = 7
        for _ in 0..<400 {
            state = state &* 1_664_525 &+ 1_013_904_223
            let i = 4000 + Int(state % UInt32(bytes.count - 4000))
            bytes[i] ^= UInt8(truncatingIfNeeded: state >> 24) | 1
        }
        let path = try MediaFixtures.write("payload-flipped.mp4", Data(bytes))
        // Decoders conceal damaged slices, so either outcome is legitimate; what
        // matters is a typed error or a bounded result, and no crash (see Ops/media-asan).
        do {
            let media = try decoder.decodeVideo(uri: path)
            #expect(media.frames.count <= 8)
            #expect(media.frames.allSatisfy { $0.width == 320 && $0.height == 240 })
        } catch {
            #expect([.mediaInvalid, .mediaTooLarge].contains(error.failureClass), "\(error)")
        }
    }

    @Test("damaged audio packets are passed over, not fatal")
    func damagedAudio() throws {
        var bytes = try Self.bytes(try MediaFixtures.audioOnly())  // moov at the end: audio data starts near 48
        let start = 48 + bytes.count / 3
        for i in start..<(start + 600) { bytes[i] = 0xFF }
        let path = try MediaFixtures.write("damaged-audio.m4a", Data(bytes))
        let media = try decoder.decodeVideo(uri: path)
        #expect(media.audioSeconds > 2.0 && media.audioSeconds < 2.6, "\(media.audioSeconds) s")
    }

    @Test("empty files, text and noise named like media")
    func notMedia() throws {
        #expect(failure(try MediaFixtures.write("empty.mp4", Data()))?.failureClass == .mediaInvalid)
        let text = try MediaFixtures.write("text.mp4", Data(String(repeating: "This is not a video, just words.\n", count: 200).utf8))
        #expect(failure(text)?.failureClass == .mediaInvalid)
        var state: UInt32 = 1
        let noise = (0..<65_536).map { _ -> UInt8 in
            state = state &* 1_103_515_245 &+ 12345
            return UInt8(truncatingIfNeeded: state >> 16)
        }
        #expect(failure(try MediaFixtures.write("noise.mp4", Data(noise)))?.failureClass == .mediaInvalid)
        #expect(failure(try MediaFixtures.write("noise.jpg", Data(noise)))?.failureClass == .mediaInvalid)
    }

    @Test("huge declared dimensions are refused before decoding")
    func hugeDimensions() throws {
        // 8192 × 4352 H.264 (35 M pixels) against the default limit (4096 × 2304):
        // refused on the size the stream declares, before any decoding.
        let big = try MediaFixtures.make("8k.mp4", ["-f", "lavfi", "-i", "color=c=black:s=8192x4352:d=0.08:r=25",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"])
        let started = Date()
        let tooLarge = #expect(throws: ItemFailure.self) { try MediaDecoder(configuration: MediaFixtures.configuration()).decodeVideo(uri: big) }
        #expect(tooLarge?.failureClass == .mediaTooLarge, "\(String(describing: tooLarge))")
        #expect(tooLarge?.message.contains("8192x4352") == true)
        #expect(Date().timeIntervalSince(started) < 2)

        // A real PNG whose header claims 10000 × 10000 pixels (CRC fixed up).
        var png = try Self.bytes(try MediaFixtures.cover("png"))
        let side: [UInt8] = [0, 0, 0x27, 0x10]
        png.replaceSubrange(16..<20, with: side)
        png.replaceSubrange(20..<24, with: side)
        let crc = Self.crc32(png[12..<29])
        png.replaceSubrange(29..<33, with: [UInt8(crc >> 24), UInt8(crc >> 16 & 0xff), UInt8(crc >> 8 & 0xff), UInt8(crc & 0xff)])
        // The PNG decoder refuses to allocate it (its max_pixels is our limit) and
        // resets the size it read, so this one is reported as invalid data.
        let path = try MediaFixtures.write("huge.png", Data(png))
        let error = #expect(throws: ItemFailure.self) { try decoder.decodeImage(uri: path) }
        #expect(error?.failureClass == .mediaInvalid, "\(String(describing: error))")
    }

    @Test("playlists and concat scripts that point at local files are refused")
    func referencingFiles() throws {
        let target = try MediaFixtures.h264()
        let hls = try MediaFixtures.write("playlist.m3u8", Data("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4.0,\n\(target)\n#EXTINF:4.0,\nfile:/etc/passwd\n#EXT-X-ENDLIST\n".utf8))
        #expect(failure(hls)?.failureClass == .forbiddenURI)
        let disguised = try MediaFixtures.write("playlist-named.mp4", Data("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4.0,\n\(target)\n#EXT-X-ENDLIST\n".utf8))
        #expect(failure(disguised)?.failureClass == .forbiddenURI)
        let concat = try MediaFixtures.write("list.ffconcat", Data("ffconcat version 1.0\nfile '\(target)'\nfile '/etc/passwd'\n".utf8))
        #expect(failure(concat)?.failureClass == .forbiddenURI)
        let concatNamed = try MediaFixtures.write("concat-named.mp4", Data("ffconcat version 1.0\nfile '\(target)'\n".utf8))
        #expect(failure(concatNamed)?.failureClass == .forbiddenURI)
    }

    @Test("a missing file is permanent media_unavailable")
    func missing() {
        let error = #expect(throws: ItemFailure.self) { try decoder.decodeVideo(uri: MediaFixtures.directory.path + "/nope.mp4") }
        #expect(error?.failureClass == .mediaUnavailable && error?.isTransient == false)
    }

    static func crc32<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        var crc: UInt32 = 0xffff_ffff
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xedb8_8320 : crc >> 1 }
        }
        return ~crc
    }
}
