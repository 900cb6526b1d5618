import Foundation
import Testing
@testable import EmberMedia

@Suite("URI policy")
struct URIPolicyTests {
    static func kind(_ policy: URIPolicy, _ uri: String) -> FailureClass? {
        do {
            _ = try policy.resolve(uri)
            return nil
        } catch {
            return error.failureClass
        }
    }

    @Test("schemes other than http, https and file are refused", arguments: [
        "ftp://media.example/a.mp4", "rtmp://media.example/live", "gopher://x/", "data:video/mp4;base64,AAAA",
        "concat:/a.mp4|/b.mp4", "subfile:,start,0,end,10,:/etc/passwd", "pipe:0", "tcp://1.1.1.1:80", "crypto:file:/x",
        "hls+http://media.example/a.m3u8", "javascript:alert(1)", "relative/path.mp4", "",
    ])
    func otherSchemes(uri: String) {
        #expect(Self.kind(URIPolicy(mediaRoot: "/tmp"), uri) == .forbiddenURI)
    }

    @Test("addresses: link-local and metadata always refused, private ones unless allowed", arguments: [
        ("http://169.254.169.254/latest/meta-data/", false), ("http://[fe80::1]/a.mp4", false),
        ("http://metadata.google.internal/computeMetadata/v1/", false), ("http://[::ffff:169.254.169.254]/", false),
        ("http://0.0.0.0:8080/a.mp4", false), ("http://[fd00:ec2::254]/", false), ("http://224.0.0.1/a.mp4", false),
        ("http://127.0.0.1:8080/a.mp4", true), ("http://2130706433/a.mp4", true), ("http://[::1]/a.mp4", true),
        ("http://10.1.2.3/a.mp4", true), ("http://172.20.0.1/a.mp4", true), ("http://192.168.1.1/a.mp4", true),
        ("http://100.64.0.1/a.mp4", true), ("http://[fd12::1]/a.mp4", true), ("http://localhost/a.mp4", true),
    ])
    func addresses(uri: String, allowedWhenPrivateIsOpen: Bool) {
        #expect(Self.kind(URIPolicy(), uri) == .forbiddenURI, "\(uri) with private addresses blocked")
        let open = URIPolicy(blockPrivateAddresses: false)
        #expect(Self.kind(open, uri) == (allowedWhenPrivateIsOpen ? nil : .forbiddenURI), "\(uri) with private addresses allowed")
    }

    @Test("public addresses, the host allow-list and user info")
    func hosts() throws {
        let resolved = try URIPolicy().resolve("https://93.184.215.14/v/abc.mp4?sig=1")
        #expect(resolved.ffmpegURL == "https://93.184.215.14/v/abc.mp4?sig=1")
        #expect(resolved.protocolWhitelist == "http,https,tcp,tls,httpproxy")
        let listed = URIPolicy(allowedHosts: ["93.184.215.14", ".cdn.example"], blockPrivateAddresses: false)
        #expect(Self.kind(listed, "http://93.184.215.14/a.mp4") == nil)
        #expect(Self.kind(listed, "http://127.0.0.1/a.mp4") == .forbiddenURI)
        #expect(Self.kind(listed, "http://evil.example/a.mp4") == .forbiddenURI)
        #expect(Self.kind(listed, "http://cdn.example.evil.example/a.mp4") == .forbiddenURI)
        #expect(Self.kind(URIPolicy(), "http://93.184.215.14@127.0.0.1/a.mp4") == .forbiddenURI)
        #expect(Self.kind(URIPolicy(), "http://user:pw@93.184.215.14/a.mp4") == .forbiddenURI)
        #expect(Self.kind(URIPolicy(), "https://93.184.215.14/a b.mp4") == .forbiddenURI)
        #expect(Self.kind(URIPolicy(), "https://93.184.215.14/a\\b.mp4") == .forbiddenURI)
        #expect(Self.kind(URIPolicy(), "https://93.184.215.14/v/a@2x.mp4") == nil, "@ in the path is fine")
    }

    @Test("files only under the media root, links resolved")
    func files() throws {
        let root = MediaFixtures.directory.appendingPathComponent("root-\(UUID().uuidString)").path
        let outside = MediaFixtures.directory.appendingPathComponent("outside-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root + "/sub", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: root + "/sub/a.mp4", contents: Data([0]))
        _ = FileManager.default.createFile(atPath: outside + "/secret.mp4", contents: Data([0]))
        try FileManager.default.createSymbolicLink(atPath: root + "/escape.mp4", withDestinationPath: outside + "/secret.mp4")
        try FileManager.default.createSymbolicLink(atPath: root + "/inside.mp4", withDestinationPath: root + "/sub/a.mp4")

        let policy = URIPolicy(mediaRoot: root)
        let real = try #require(URIPolicy.realPath(root + "/sub/a.mp4"))
        #expect(try policy.resolve(root + "/sub/a.mp4").ffmpegURL == "file:" + real)
        #expect(try policy.resolve("file://" + root + "/sub/a.mp4").protocolWhitelist == "file")
        #expect(try policy.resolve("file:" + root + "/inside.mp4").ffmpegURL == "file:" + real)
        #expect(try policy.resolve("file://" + root + "/sub/%61.mp4").ffmpegURL == "file:" + real, "percent-decoded")
        #expect(Self.kind(policy, root + "/escape.mp4") == .forbiddenURI)
        #expect(Self.kind(policy, root + "/../" + (outside as NSString).lastPathComponent + "/secret.mp4") == .forbiddenURI)
        #expect(Self.kind(policy, outside + "/secret.mp4") == .forbiddenURI)
        #expect(Self.kind(policy, "file:///etc/passwd") == .forbiddenURI)
        #expect(Self.kind(policy, "file://otherhost" + root + "/sub/a.mp4") == .forbiddenURI)
        #expect(Self.kind(policy, root + "-sibling/a.mp4") == .forbiddenURI, "prefix of the root's name is not inside it")
        #expect(Self.kind(policy, root + "/missing.mp4") == .mediaUnavailable)
        #expect(Self.kind(URIPolicy(), root + "/sub/a.mp4") == .forbiddenURI, "no root, no files")
    }

    @Test("a forbidden URI fails the decode before anything is opened")
    func decoderChecksFirst() {
        let decoder = MediaDecoder(configuration: MediaFixtures.configuration())
        #expect(throws: ItemFailure(.forbiddenURI, "scheme 'ftp' is not allowed (http, https, file)")) {
            try decoder.decode(videoURI: "ftp://media.example/a.mp4")
        }
        let error = #expect(throws: ItemFailure.self) { try decoder.decode(videoURI: nil, coverURI: "file:///etc/passwd") }
        #expect(error?.failureClass.rawValue == "forbidden_uri")
        #expect(error?.isTransient == false)
    }
}
