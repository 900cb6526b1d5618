import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Decides which media URIs may be opened, before anything is opened.
///
/// - `http`/`https` to any host, or only to `allowedHosts` when set (an entry
///   `.example.com` also admits its subdomains). The host is resolved and every
///   address checked: link-local (169.254/16 with the cloud metadata address,
///   fe80::/10), unspecified and multicast addresses are always refused; loopback and
///   private ranges (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7) are refused
///   while `blockPrivateAddresses` is on (the default).
/// - `file:` URIs and plain absolute paths only when `mediaRoot` is set, and only
///   when the path, with symbolic links resolved, lies under that root.
/// - Nothing else: no other scheme, no user-info, spaces, backslashes or control
///   characters (so FFmpeg and this parser cannot read the URI differently).
///
/// FFmpeg is then given a `protocol_whitelist` (`file`, or `http,https,tcp,tls,httpproxy`),
/// so a container cannot reach another protocol. The addresses vetted here are pinned:
/// FFmpeg connects only through the input's `PinnedEgress` proxy on loopback, which
/// connects to these addresses rather than asking DNS again (so a name that rebinds
/// between the two lookups cannot reach a forbidden host), and vets every further host
/// (redirects) with this same policy before connecting.
public struct URIPolicy: Sendable, Equatable {
    /// Hosts http(s) URIs may name; nil admits every host. Compared case-insensitively.
    public var allowedHosts: [String]?
    /// Directory that `file:` URIs and plain paths must lie under; nil refuses files.
    public var mediaRoot: String?
    /// Refuse loopback and private-network addresses (on by default).
    public var blockPrivateAddresses: Bool

    public init(allowedHosts: [String]? = nil, mediaRoot: String? = nil, blockPrivateAddresses: Bool = true) {
        self.allowedHosts = allowedHosts
        self.mediaRoot = mediaRoot
        self.blockPrivateAddresses = blockPrivateAddresses
    }

    /// A URI that passed the policy: what to hand to FFmpeg, and the protocols it may use.
    public struct Resolved: Sendable, Equatable {
        /// `file:/absolute/real/path` or the original http(s) URI.
        public let ffmpegURL: String
        public let protocolWhitelist: String
        public let isRemote: Bool
        /// For http(s): the host (lower case, without brackets) and the addresses it was
        /// vetted at, which the connection must use.
        let pin: Pin?

        init(ffmpegURL: String, protocolWhitelist: String, isRemote: Bool, pin: Pin? = nil) {
            self.ffmpegURL = ffmpegURL
            self.protocolWhitelist = protocolWhitelist
            self.isRemote = isRemote
            self.pin = pin
        }
    }

    struct Pin: Sendable, Equatable {
        let host: String
        let addresses: [Address]
    }

    /// Checks `uri`; throws `forbidden_uri` (or `media_unavailable` for a missing
    /// file or an unresolvable host) without opening anything.
    public func resolve(_ uri: String) throws(ItemFailure) -> Resolved {
        guard !uri.isEmpty, uri.utf8.count <= 4096 else { throw .forbidden("URI is empty or longer than 4096 bytes") }
        guard uri.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7f && $0 != "\\" }) else {
            throw .forbidden("URI contains spaces, control, backslash or non-ASCII characters")
        }
        if uri.hasPrefix("/") { return try resolveFile(path: uri, uri: uri) }
        guard let components = URLComponents(string: uri), let scheme = components.scheme?.lowercased() else {
            throw .forbidden("not a URI: \(uri)")
        }
        switch scheme {
        case "file":
            guard components.host == nil || components.host == "" || components.host == "localhost" else {
                throw .forbidden("file URI names a host: \(uri)")
            }
            return try resolveFile(path: components.path, uri: uri)
        case "http", "https":
            return try resolveRemote(components, uri: uri)
        default:
            throw .forbidden("scheme '\(scheme)' is not allowed (http, https\(mediaRoot == nil ? "" : ", file"))")
        }
    }

    private func resolveFile(path: String, uri: String) throws(ItemFailure) -> Resolved {
        guard let mediaRoot else { throw .forbidden("file URIs are not allowed (no media root configured): \(uri)") }
        guard path.hasPrefix("/") else { throw .forbidden("file path is not absolute: \(uri)") }
        let root = URL(fileURLWithPath: mediaRoot).standardizedFileURL.path
        let lexical = URL(fileURLWithPath: path).standardizedFileURL.path
        guard Self.isInside(lexical, root) else { throw .forbidden("path is outside the media root: \(uri)") }
        // Resolve symbolic links on both sides, then check again.
        guard let realRoot = Self.realPath(root) else {
            throw ItemFailure(.mediaUnavailable, "media root does not exist: \(mediaRoot)")
        }
        guard let real = Self.realPath(lexical) else {
            throw ItemFailure(.mediaUnavailable, "no such file: \(uri)")
        }
        guard Self.isInside(real, realRoot) else { throw .forbidden("path leaves the media root through a link: \(uri)") }
        return Resolved(ffmpegURL: "file:" + real, protocolWhitelist: "file", isRemote: false)
    }

    private func resolveRemote(_ components: URLComponents, uri: String) throws(ItemFailure) -> Resolved {
        // User info ("https://allowed.example@other.host/") is where URI parsers disagree.
        let afterScheme = uri.split(separator: ":", maxSplits: 1).last.map { $0.drop { $0 == "/" } } ?? ""
        let authority = afterScheme.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard components.user == nil, components.password == nil, !authority.contains("@") else {
            throw .forbidden("URIs with user info are not allowed: \(uri)")
        }
        guard let host = components.host?.lowercased(), !host.isEmpty else { throw .forbidden("URI has no host: \(uri)") }
        let bare = Self.bareHost(host)
        let addresses = try vet(host: bare)
        return Resolved(
            ffmpegURL: uri, protocolWhitelist: "http,https,tcp,tls,httpproxy", isRemote: true,
            pin: Pin(host: bare, addresses: addresses))
    }

    /// `host` without the brackets of an IPv6 literal, lower case.
    static func bareHost(_ host: String) -> String {
        let host = host.lowercased()
        return host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
    }

    /// Checks a host name or literal (no brackets) against the allow-list, resolves it
    /// once and checks every address; returns the addresses a connection may use.
    func vet(host: String) throws(ItemFailure) -> [Address] {
        if let allowedHosts {
            let admitted = allowedHosts.contains { entry in
                let entry = entry.lowercased()
                return entry.hasPrefix(".") ? host.hasSuffix(entry) || host == String(entry.dropFirst()) : host == entry
            }
            guard admitted else { throw .forbidden("host '\(host)' is not in the allow-list") }
        }
        if host == "metadata.google.internal" || host == "metadata" { throw .forbidden("metadata host: \(host)") }
        let addresses = try Self.addresses(of: host)
        for address in addresses {
            if let reason = Self.refusal(of: address, blockPrivate: blockPrivateAddresses) {
                throw .forbidden("host '\(host)' resolves to \(reason) address \(address.text)")
            }
        }
        guard !addresses.isEmpty else { throw ItemFailure(.mediaUnavailable, "host '\(host)' has no address") }
        return addresses
    }

    // MARK: - Paths

    static func isInside(_ path: String, _ root: String) -> Bool {
        root == "/" || path == root || path.hasPrefix(root.hasSuffix("/") ? root : root + "/")
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    // MARK: - Addresses

    struct Address: Sendable, Equatable {
        /// 4 or 16 bytes, network order.
        let bytes: [UInt8]
        var text: String {
            bytes.count == 4
                ? bytes.map(String.init).joined(separator: ".")
                : stride(from: 0, to: 16, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
                    .joined(separator: ":")
        }
    }

    /// Every address `host` resolves to (numeric forms included, as the C resolver reads them).
    static func addresses(of host: String) throws(ItemFailure) -> [Address] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>? = nil
        let status = getaddrinfo(host, nil, &hints, &list)
        guard status == 0, let list else {
            let reason = String(cString: gai_strerror(status))
            // A name that does not exist is permanent; a resolver failure is not.
            let transient = status != EAI_NONAME
            throw ItemFailure(.mediaUnavailable, "cannot resolve host '\(host)': \(reason)", isTransient: transient)
        }
        defer { freeaddrinfo(list) }
        var result: [Address] = []
        var entry: UnsafeMutablePointer<addrinfo>? = list
        while let current = entry {
            if let socketAddress = current.pointee.ai_addr {
                switch Int32(current.pointee.ai_family) {
                case AF_INET:
                    socketAddress.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                        var raw = $0.pointee.sin_addr
                        result.append(Address(bytes: withUnsafeBytes(of: &raw) { Array($0) }))
                    }
                case AF_INET6:
                    socketAddress.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                        var raw = $0.pointee.sin6_addr
                        result.append(Address(bytes: withUnsafeBytes(of: &raw) { Array($0) }))
                    }
                default: break
                }
            }
            entry = current.pointee.ai_next
        }
        return result
    }

    /// Why an address is refused ("link-local", "private", …), or nil when it may be used.
    static func refusal(of address: Address, blockPrivate: Bool) -> String? {
        var b = address.bytes
        if b.count == 16 {
            // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible forms are judged as IPv4.
            let mapped = b[0..<10].allSatisfy { $0 == 0 } && b[10] == 0xff && b[11] == 0xff
            let compatible = b[0..<12].allSatisfy { $0 == 0 } && !(b[12..<16].allSatisfy { $0 == 0 } || b[12..<15].allSatisfy { $0 == 0 } && b[15] == 1)
            if mapped || compatible { b = Array(b[12..<16]) }
        }
        if b.count == 4 {
            switch (b[0], b[1]) {
            case (169, 254): return "link-local or metadata"
            case (0, _): return "unspecified"
            case (224...255, _): return "multicast or reserved"
            default: break
            }
            guard blockPrivate else { return nil }
            switch (b[0], b[1]) {
            case (127, _): return "loopback"
            case (10, _), (172, 16...31), (192, 168): return "private"
            case (100, 64...127): return "shared (carrier-grade NAT)"
            default: return nil
            }
        }
        if b.allSatisfy({ $0 == 0 }) { return "unspecified" }
        if b[0] == 0xfe && b[1] & 0xc0 == 0x80 { return "link-local" }
        if b[0] == 0xff { return "multicast" }
        // fd00:ec2::254, the AWS metadata service over IPv6.
        if b == [0xfd, 0, 0x0e, 0xc2] + [UInt8](repeating: 0, count: 10) + [0x02, 0x54] { return "metadata" }
        guard blockPrivate else { return nil }
        if b[0..<15].allSatisfy({ $0 == 0 }) && b[15] == 1 { return "loopback" }
        if b[0] & 0xfe == 0xfc { return "private (unique local)" }
        return nil
    }
}
