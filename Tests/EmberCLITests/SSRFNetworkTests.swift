import Foundation
import Testing

/// Ops/ssrf-net in the test suite: `ember media-check` in a network namespace wired to a
/// public media host, a fake metadata server, a private host and a DNS server that
/// rebinds. Needs root and iproute2, which CI has (Ops/test fails on a skipped test).
@Suite("SSRF in a network of test hosts")
struct SSRFNetworkTests {
    static let canRun = getuid() == 0 && ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].contains {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    @Test("the media layer never connects to a forbidden host: redirects, playlists, IPv6 forms, DNS rebinding", .enabled(if: canRun))
    func ssrfNetwork() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let ember = testBinary.deletingLastPathComponent().appendingPathComponent("ember").path
        let (status, output) = try runProgram(root.appendingPathComponent("Ops/ssrf-net"), ["--ember", ember])
        #expect(status == 0, "\(output)")
        let summary = try #require(output.split(separator: "\n").last { $0.hasPrefix("ssrf-net:") }, "\(output)")
        // "ssrf-net: 39 cases, 0 unexpected; forbidden connections: 0; public media requests: 16; rebind.test A queries: 1"
        let numbers = summary.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
        try #require(numbers.count == 5, "\(summary)")
        #expect(numbers[0] >= 39, "cases: \(summary)")
        #expect(numbers[1] == 0, "unexpected outcomes: \(output)")
        #expect(numbers[2] == 0, "forbidden connections: \(output)")
        #expect(numbers[3] > 0, "the public host must have been reached: \(summary)")
        #expect(numbers[4] == 1, "rebind.test must be resolved once, by the policy: \(summary)")
        let lines = output.split(separator: "\n")
        #expect(lines.filter { $0.hasPrefix("ok ") }.count == 4, "\(output)")
        #expect(lines.contains { $0.hasPrefix("ok ") && $0.contains("http://rebind.test/clip.mp4") })
    }
}
