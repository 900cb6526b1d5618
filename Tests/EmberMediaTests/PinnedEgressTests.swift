import Foundation
import Testing
@testable import EmberMedia

/// Address pinning: FFmpeg reaches remote media only through `PinnedEgress`, which
/// connects to the addresses the policy vetted and vets every other host itself.
/// (The DNS-rebinding case with a real resolver is SSRFNetworkTests, Ops/ssrf-net.)
@Suite("Pinned egress", .serialized)
struct PinnedEgressTests {
    static let loopback = URIPolicy.Address(bytes: [127, 0, 0, 1])

    /// What `URIPolicy.resolve` returns for `http://name:port/path` when `name` was vetted at `addresses`.
    static func pinned(_ name: String, _ addresses: [URIPolicy.Address], port: Int, path: String) -> URIPolicy.Resolved {
        URIPolicy.Resolved(
            ffmpegURL: "http://\(name):\(port)/\(path)", protocolWhitelist: "http,https,tcp,tls,httpproxy", isRemote: true,
            pin: URIPolicy.Pin(host: name, addresses: addresses))
    }

    @Test("FFmpeg connects to the vetted address and never asks DNS itself (the name does not resolve)")
    func connectsToThePin() throws {
        let server = try TestServer(.files(MediaFixtures.directory.path))
        let name = (try MediaFixtures.h264() as NSString).lastPathComponent
        var configuration = RemoteMediaTests.configuration()
        configuration.uriPolicy.allowedHosts = ["pinned.invalid"]
        let decoder = MediaDecoder(configuration: configuration)
        // `.invalid` never resolves (RFC 6761): the decode can only succeed through the pin.
        #expect(throws: ItemFailure.self) { try decoder.decodeVideo(uri: "http://pinned.invalid:\(server.port)/\(name)") }
        let resolved = Self.pinned("pinned.invalid", [Self.loopback], port: server.port, path: name)
        let pass = try decoder.read(resolved, uri: resolved.ffmpegURL, mode: .keyPacketsOnly, wantAudio: true)
        #expect(pass.keyframeCount == 4)
        #expect(!pass.audio.isEmpty)
    }

    @Test("a redirect to the metadata address is refused by the proxy before it connects")
    func redirectToMetadata() throws {
        let redirect = try TestServer(.redirect("http://169.254.169.254/latest/meta-data/"))
        let decoder = MediaDecoder(configuration: RemoteMediaTests.configuration())
        let error = #expect(throws: ItemFailure.self) { try decoder.decodeVideo(uri: redirect.url("a.mp4")) }
        #expect(error?.failureClass == .forbiddenURI, "\(String(describing: error))")
        #expect(error?.message.contains("169.254.169.254") == true, "\(String(describing: error))")
    }

    @Test("a redirect to a name that resolves to loopback is refused under the default policy, though the pinned first hop was loopback")
    func redirectToLoopbackName() throws {
        let files = try TestServer(.files(MediaFixtures.directory.path))
        let name = (try MediaFixtures.h264() as NSString).lastPathComponent
        let redirect = try TestServer(.redirect("http://localhost:\(files.port)/\(name)"))
        let decoder = MediaDecoder(configuration: MediaFixtures.configuration())  // private addresses blocked
        let resolved = Self.pinned("pinned.invalid", [Self.loopback], port: redirect.port, path: "a.mp4")
        let error = #expect(throws: ItemFailure.self) {
            try decoder.read(resolved, uri: resolved.ffmpegURL, mode: .keyPacketsOnly, wantAudio: false)
        }
        #expect(error?.failureClass == .forbiddenURI, "\(String(describing: error))")
        #expect(error?.message.contains("'localhost' resolves to loopback") == true, "\(String(describing: error))")
    }

    @Test("proxy requests: absolute form is rewritten to origin form, CONNECT authorities parsed, anything else refused")
    func requests() throws {
        let get = try #require(PinnedEgress.Request(Array("GET http://Media.Example:8080/a/b.mp4?x=1 HTTP/1.1\r\nHost: media.example:8080\r\n\r\n".utf8)))
        #expect(get.host == "media.example" && get.port == 8080 && !get.isTunnel)
        #expect(String(decoding: get.forwardedHead, as: UTF8.self) == "GET /a/b.mp4?x=1 HTTP/1.1\r\nHost: media.example:8080\r\n\r\n")
        let bare = try #require(PinnedEgress.Request(Array("GET http://media.example HTTP/1.1\r\n\r\n".utf8)))
        #expect(bare.port == 80 && String(decoding: bare.forwardedHead, as: UTF8.self).hasPrefix("GET / HTTP/1.1\r\n"))
        let tunnel = try #require(PinnedEgress.Request(Array("CONNECT [2001:db8::1]:8443 HTTP/1.1\r\n\r\n".utf8)))
        #expect(tunnel.host == "2001:db8::1" && tunnel.port == 8443 && tunnel.isTunnel)
        for bad in [
            "GET /relative HTTP/1.1\r\n\r\n", "GET http://user@host/ HTTP/1.1\r\n\r\n", "CONNECT host:99999 HTTP/1.1\r\n\r\n",
            "CONNECT [::1 HTTP/1.1\r\n\r\n", "GET ftp://host/ HTTP/1.1\r\n\r\n", "nonsense\r\n\r\n",
        ] {
            #expect(PinnedEgress.Request(Array(bad.utf8)) == nil, "\(bad)")
        }
    }

    @Test("redirect responses: the Location of a 3xx is found, and its scheme judged")
    func redirectResponses() {
        let found = PinnedEgress.redirectTarget(Array("HTTP/1.1 302 Found\r\nContent-Length: 0\r\nlocation:  file:///etc/passwd \r\n\r\n".utf8))
        #expect(found == "file:///etc/passwd")
        #expect(PinnedEgress.redirectTarget(Array("HTTP/1.1 200 OK\r\nLocation: file:///x\r\n\r\n".utf8)) == nil)
        #expect(PinnedEgress.scheme(of: "FILE:///etc/passwd") == "file")
        #expect(PinnedEgress.scheme(of: "hls+http://h/x") == "hls+http")
        #expect(PinnedEgress.scheme(of: "/relative:path") == nil)
        #expect(PinnedEgress.scheme(of: "other/a:b") == nil)
    }

    @Test("a redirect to a file: URI is refused as forbidden_uri, nothing read")
    func redirectToFile() throws {
        let redirect = try TestServer(.redirect("file:///etc/passwd"))
        var configuration = RemoteMediaTests.configuration()
        configuration.uriPolicy.mediaRoot = "/"
        let error = #expect(throws: ItemFailure.self) { try MediaDecoder(configuration: configuration).decodeVideo(uri: redirect.url("a.mp4")) }
        #expect(error?.failureClass == .forbiddenURI, "\(String(describing: error))")
        #expect(error?.message.contains("'file:'") == true, "\(String(describing: error))")
    }
}
