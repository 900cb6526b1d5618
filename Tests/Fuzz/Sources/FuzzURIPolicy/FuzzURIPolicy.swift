@testable import EmberMedia
import FuzzSupport

/// Hosts are limited to numeric literals and one name, so nothing reaches a real
/// resolver; files to a root that exists.
let policy = URIPolicy(allowedHosts: ["127.0.0.1", "[::1]", "::1", "203.0.113.7", "localhost"], mediaRoot: "/tmp")

/// URIs from events, the proxy's request parser, and the address judge.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzURIPolicy(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    guard let start else { return 0 }
    let bytes = fuzzInput(start, count)
    let text = String(decoding: bytes, as: UTF8.self)
    if let resolved = try? policy.resolve(text) {
        // What passed must be a file under the root or a vetted, pinned remote host.
        if resolved.isRemote {
            precondition(resolved.pin.map { policy.allowedHosts!.contains($0.host) } == true, "unvetted host passed: \(text)")
            precondition(resolved.pin!.addresses.allSatisfy { URIPolicy.refusal(of: $0, blockPrivate: true) == nil }, "\(text)")
        } else {
            precondition(resolved.ffmpegURL.hasPrefix("file:/tmp/") || resolved.ffmpegURL == "file:/tmp", "\(text)")
        }
    }
    _ = PinnedEgress.Request(bytes)
    if bytes.count == 4 || bytes.count == 16 {
        _ = URIPolicy.refusal(of: URIPolicy.Address(bytes: bytes), blockPrivate: bytes[0] & 1 == 0)
    }
    return 0
}

@main enum Main {
    static func main() { runFuzzer(fuzzURIPolicy) }
}
