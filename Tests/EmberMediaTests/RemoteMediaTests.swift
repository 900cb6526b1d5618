import Foundation
import Testing
@testable import EmberMedia

@Suite("HTTP media", .serialized)
struct RemoteMediaTests {
    /// Loopback is a private address: the test servers need it opened.
    static func configuration(_ change: (inout MediaConfiguration) -> Void = { _ in }) -> MediaConfiguration {
        var configuration = MediaFixtures.configuration()
        configuration.uriPolicy.blockPrivateAddresses = false
        change(&configuration)
        return configuration
    }

    @Test("an http URI decodes to the same frames and audio as the file")
    func overHTTP() throws {
        let path = try MediaFixtures.h264()
        let server = try TestServer(.files(MediaFixtures.directory.path))
        let decoder = MediaDecoder(configuration: Self.configuration())
        let remote = try decoder.decodeVideo(uri: server.url((path as NSString).lastPathComponent))
        let local = try decoder.decodeVideo(uri: path)
        #expect(remote.keyframeCount == 4)
        #expect(remote.frames == local.frames)
        #expect(remote.audio == local.audio)
        let webm = try decoder.decode(videoURI: server.url((try MediaFixtures.vp9() as NSString).lastPathComponent),
            coverURI: server.url("cover.jpg").replacingOccurrences(of: "cover.jpg", with: (try MediaFixtures.cover("jpg") as NSString).lastPathComponent))
        #expect(webm.frames.count == 4 && webm.cover?.width == 64)
    }

    @Test("redirects are followed only to URIs the policy allows")
    func redirects() throws {
        let files = try TestServer(.files(MediaFixtures.directory.path))
        let name = (try MediaFixtures.h264() as NSString).lastPathComponent
        let decoder = MediaDecoder(configuration: Self.configuration())
        let allowed = try TestServer(.redirect(files.url(name)))
        #expect(try decoder.decodeVideo(uri: allowed.url("a.mp4")).keyframeCount == 4)
        // 0.0.0.0 reaches this machine on Linux, and is refused even with private addresses open.
        let sneaky = try TestServer(.redirect("http://0.0.0.0:\(files.port)/\(name)"))
        let error = #expect(throws: ItemFailure.self) { try decoder.decodeVideo(uri: sneaky.url("a.mp4")) }
        #expect(error?.failureClass == .forbiddenURI, "\(String(describing: error))")
        #expect(error?.message.contains("redirects") == true)
    }

    @Test("HTTP 404 is permanent, a refused connection is transient")
    func httpErrors() throws {
        let server = try TestServer(.files(MediaFixtures.directory.path))
        let decoder = MediaDecoder(configuration: Self.configuration())
        let missing = #expect(throws: ItemFailure.self) { try decoder.decodeVideo(uri: server.url("missing.mp4")) }
        #expect(missing?.failureClass == .mediaUnavailable && missing?.isTransient == false, "\(String(describing: missing))")
        let refused = #expect(throws: ItemFailure.self) { try decoder.decodeVideo(uri: "http://127.0.0.1:\(closedPort())/a.mp4") }
        #expect(refused?.failureClass == .mediaUnavailable && refused?.isTransient == true, "\(String(describing: refused))")
    }

    @Test("loopback is refused by the default policy, nothing is fetched")
    func defaultPolicy() throws {
        let server = try TestServer(.files(MediaFixtures.directory.path))
        let error = #expect(throws: ItemFailure.self) { try MediaDecoder().decodeVideo(uri: server.url("h264-aac.mp4")) }
        #expect(error?.failureClass == .forbiddenURI)
    }

    @Test("a server that accepts and never answers hits the open timeout")
    func stalledServer() throws {
        let server = try TestServer(.stall)
        let decoder = MediaDecoder(configuration: Self.configuration {
            $0.openTimeoutSeconds = 1
            $0.readTimeoutSeconds = 1
        })
        let start = Date()
        let error = #expect(throws: ItemFailure.self) { try decoder.decodeVideo(uri: server.url("a.mp4")) }
        let elapsed = Date().timeIntervalSince(start)
        #expect(error?.failureClass == .mediaUnavailable && error?.isTransient == true, "\(String(describing: error))")
        #expect(elapsed >= 0.9 && elapsed < 4, "gave up after \(elapsed) s")
    }

    @Test("a server that stops mid-body hits the read timeout")
    func stallMidBody() throws {
        let path = try MediaFixtures.make("long-h264.mp4", ["-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=20"] + MediaFixtures.x264Keyframes + ["-movflags", "+faststart"])
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
        let server = try TestServer(.partial(path, size / 2))
        let decoder = MediaDecoder(configuration: Self.configuration {
            $0.openTimeoutSeconds = 5
            $0.readTimeoutSeconds = 1
        })
        let start = Date()
        let error = #expect(throws: ItemFailure.self) { try decoder.decodeVideo(uri: server.url("a.mp4")) }
        let elapsed = Date().timeIntervalSince(start)
        #expect(error?.failureClass == .mediaUnavailable && error?.isTransient == true, "\(String(describing: error))")
        #expect(error?.message.contains("no data received") == true, "\(String(describing: error))")
        #expect(elapsed < 4, "gave up after \(elapsed) s")
    }

    @Test("a server that drips bytes hits the total time budget")
    func dripFeed() throws {
        let server = try TestServer(.drip(try MediaFixtures.h264()))
        let decoder = MediaDecoder(configuration: Self.configuration {
            $0.readTimeoutSeconds = 1  // never reached: a byte arrives every 0.2 s
            $0.totalTimeoutSeconds = 1.5
        })
        let start = Date()
        let error = #expect(throws: ItemFailure.self) { try decoder.decodeVideo(uri: server.url("a.mp4")) }
        let elapsed = Date().timeIntervalSince(start)
        #expect(error?.failureClass == .mediaUnavailable && error?.isTransient == true, "\(String(describing: error))")
        #expect(error?.message.contains("total decode time") == true, "\(String(describing: error))")
        #expect(elapsed >= 1.4 && elapsed < 4, "gave up after \(elapsed) s")
    }

    @Test("a declared Content-Length over the byte limit is refused before reading")
    func tooManyBytes() throws {
        let server = try TestServer(.files(MediaFixtures.directory.path))
        let decoder = MediaDecoder(configuration: Self.configuration { $0.maxBytes = 10_000 })
        let error = #expect(throws: ItemFailure.self) {
            try decoder.decodeVideo(uri: server.url((try MediaFixtures.h264() as NSString).lastPathComponent))
        }
        #expect(error?.failureClass == .mediaTooLarge && error?.isTransient == false, "\(String(describing: error))")
    }

    @Test("an HLS playlist over HTTP cannot reach local files, even when HLS is allowed")
    func hlsCannotReachFiles() throws {
        let target = try MediaFixtures.h264()
        let playlist = try MediaFixtures.write("local.m3u8", Data("""
            #EXTM3U
            #EXT-X-TARGETDURATION:4
            #EXTINF:4.0,
            file:\(target)
            #EXT-X-ENDLIST

            """.utf8))
        let server = try TestServer(.files(MediaFixtures.directory.path))
        let refused = #expect(throws: ItemFailure.self) {
            try MediaDecoder(configuration: Self.configuration()).decodeVideo(uri: server.url((playlist as NSString).lastPathComponent))
        }
        #expect(refused?.failureClass == .forbiddenURI, "\(String(describing: refused))")

        // With HLS admitted, the protocol whitelist (http, https, tcp, tls) still stops the file segment.
        let lenient = MediaDecoder(configuration: Self.configuration { $0.allowedFormats.append("hls") })
        let error = #expect(throws: ItemFailure.self) { try lenient.decodeVideo(uri: server.url((playlist as NSString).lastPathComponent)) }
        #expect(error?.failureClass == .mediaInvalid, "\(String(describing: error))")
    }
}
