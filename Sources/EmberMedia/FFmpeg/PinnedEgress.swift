import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A loopback HTTP proxy, one per remote input, through which FFmpeg makes every
/// connection of that input: the first request, each redirect, each seek.
///
/// Why: `URIPolicy` resolves the host and vets its addresses; if FFmpeg then resolved
/// the name again, a DNS answer that changes in between (DNS rebinding) would send it
/// to a forbidden host. FFmpeg has no resolver hook, but it honours an `http_proxy`
/// option for both schemes, and a proxy is where the name is turned into an address.
/// So this proxy connects to the addresses the policy vetted (pinned per host), and
/// vets any other host (a redirect target) with the same policy, once, before
/// connecting; a refused host gets a 403 and the refusal is kept for the caller.
///
/// - `http`: FFmpeg sends `GET http://host:port/path` (absolute form); the request
///   goes upstream in origin form with FFmpeg's own `Host` header untouched.
/// - `https`: FFmpeg sends `CONNECT host:port` and runs TLS end to end through the
///   tunnel, so SNI and certificate checks still name the original host; nothing
///   here sees or changes the TLS bytes.
///
/// Bounded: at most `maxConnections` connections per input, 16 KiB of request head,
/// a connect timeout, and every thread polls with a 100 ms timeout and exits once
/// `shutdown()` has been called (MediaInput's deinit).
final class PinnedEgress: @unchecked Sendable {
    let port: UInt16
    let policy: URIPolicy
    private let connectTimeoutSeconds: Double
    private let listener: Int32
    private let lock = NSLock()
    private var pins: [String: [URIPolicy.Address]]
    private var refusal: ItemFailure?
    private var running = true
    private var accepted = 0
    private var upstream: [String] = []

    static let maxConnections = 32
    static let headLimit = 16 * 1024

    init(policy: URIPolicy, pin: URIPolicy.Pin, connectTimeoutSeconds: Double) throws(ItemFailure) {
        self.policy = policy
        self.pins = [pin.host: pin.addresses]
        self.connectTimeoutSeconds = connectTimeoutSeconds
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ItemFailure(.mediaUnavailable, "egress proxy: socket: \(Self.errnoText())", isTransient: true) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && listen(fd, 16) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else {
            let reason = Self.errnoText()
            close(fd)
            throw ItemFailure(.mediaUnavailable, "egress proxy: listen on loopback: \(reason)", isTransient: true)
        }
        listener = fd
        port = UInt16(bigEndian: address.sin_port)
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    /// The value of FFmpeg's `http_proxy` option.
    var proxyURL: String { "http://127.0.0.1:\(port)" }

    /// Why the proxy refused a host, if it did: the input's failure is this, not the
    /// HTTP 403 FFmpeg saw.
    var refused: ItemFailure? { lock.withLock { refusal } }

    /// `host:port → address` for every upstream connection made, in order.
    var connections: [String] { lock.withLock { upstream } }

    /// Stops accepting; open tunnels close within one poll interval.
    func shutdown() { lock.withLock { running = false } }

    private var isRunning: Bool { lock.withLock { running } }

    // MARK: - Connections

    private func acceptLoop() {
        defer { close(listener) }
        while isRunning {
            var entry = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, 100) > 0 else { continue }
            let client = accept(listener, nil, nil)
            guard client >= 0 else { continue }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            let admitted = lock.withLock {
                accepted += 1
                return accepted <= Self.maxConnections
            }
            guard admitted else {
                close(client)
                continue
            }
            Thread.detachNewThread { [self] in serve(client) }
        }
    }

    private func serve(_ client: Int32) {
        var upstreamFD: Int32 = -1
        defer {
            close(client)
            if upstreamFD >= 0 { close(upstreamFD) }
        }
        guard let (head, rest) = readHead(client, timeoutSeconds: connectTimeoutSeconds), let request = Request(head) else {
            reply(client, "400 Bad Request")
            return
        }
        let addresses: [URIPolicy.Address]
        do {
            addresses = try vetted(request.host)
        } catch {
            if error.failureClass == .forbiddenURI { lock.withLock { refusal = refusal ?? error } }
            reply(client, error.failureClass == .forbiddenURI ? "403 Forbidden" : "502 Bad Gateway")
            return
        }
        guard let (fd, used) = connectFirst(addresses, port: request.port) else {
            reply(client, "502 Bad Gateway")
            return
        }
        upstreamFD = fd
        lock.withLock { upstream.append("\(request.host):\(request.port) → \(used.text)") }
        if request.isTunnel {
            guard writeAll(client, Array("HTTP/1.1 200 Connection established\r\n\r\n".utf8)) else { return }
            guard rest.isEmpty || writeAll(fd, rest) else { return }
        } else {
            guard writeAll(fd, request.forwardedHead), rest.isEmpty || writeAll(fd, rest) else { return }
            // A redirect to another scheme (file:, data:, …) is refused here, as a policy
            // refusal, rather than left to FFmpeg's generic error.
            // No deadline of its own: the input's watchdog times a slow server out (and
            // classifies it as transient); the shutdown that follows ends this wait.
            guard let (head, body) = readHead(fd, timeoutSeconds: nil) else { return }
            if let target = Self.redirectTarget(head), let scheme = Self.scheme(of: target), scheme != "http", scheme != "https" {
                lock.withLock { refusal = refusal ?? .forbidden("redirect to a '\(scheme):' URI: \(target)") }
                reply(client, "403 Forbidden")
                return
            }
            guard writeAll(client, head + body) else { return }
        }
        relay(client, fd)
    }

    /// The pinned addresses of `host`, or the policy's verdict on it, pinned from now on.
    private func vetted(_ host: String) throws(ItemFailure) -> [URIPolicy.Address] {
        if let pinned = lock.withLock({ pins[host] }) { return pinned }
        let addresses = try policy.vet(host: host)
        lock.withLock { pins[host] = pins[host] ?? addresses }
        return addresses
    }

    /// Reads up to the blank line ending the request head; returns it and any bytes after.
    private func readHead(_ fd: Int32, timeoutSeconds: Double?) -> ([UInt8], [UInt8])? {
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        let deadline = timeoutSeconds.map { Watchdog.now() + Watchdog.nanoseconds($0) } ?? .max
        while buffer.count < Self.headLimit, isRunning, Watchdog.now() < deadline {
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, 100) >= 0 else { return nil }
            guard entry.revents != 0 else { continue }
            let count = read(fd, &chunk, chunk.count)
            guard count > 0 else { return nil }
            buffer += chunk[0..<count]
            if let end = Self.endOfHead(buffer) { return (Array(buffer[..<end]), Array(buffer[end...])) }
        }
        return nil
    }

    static func endOfHead(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for index in 0...(bytes.count - 4) where bytes[index] == 13 && bytes[index + 1] == 10 && bytes[index + 2] == 13 && bytes[index + 3] == 10 {
            return index + 4
        }
        return nil
    }

    /// Connects to the first address that answers within the connect timeout.
    private func connectFirst(_ addresses: [URIPolicy.Address], port: UInt16) -> (Int32, URIPolicy.Address)? {
        for address in addresses {
            if let fd = connect(to: address, port: port) { return (fd, address) }
        }
        return nil
    }

    private func connect(to address: URIPolicy.Address, port: UInt16) -> Int32? {
        let family = address.bytes.count == 4 ? AF_INET : AF_INET6
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { return nil }
        var status: Int32
        if family == AF_INET {
            var target = sockaddr_in()
            target.sin_family = sa_family_t(AF_INET)
            target.sin_port = port.bigEndian
            withUnsafeMutableBytes(of: &target.sin_addr) { $0.copyBytes(from: address.bytes) }
            status = withUnsafePointer(to: &target) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        } else {
            var target = sockaddr_in6()
            target.sin6_family = sa_family_t(AF_INET6)
            target.sin6_port = port.bigEndian
            withUnsafeMutableBytes(of: &target.sin6_addr) { $0.copyBytes(from: address.bytes) }
            status = withUnsafePointer(to: &target) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        }
        if status != 0 && errno == EINPROGRESS {
            let deadline = Watchdog.now() + Watchdog.nanoseconds(connectTimeoutSeconds)
            var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            while isRunning, Watchdog.now() < deadline, poll(&entry, 1, 100) == 0 {}
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            if entry.revents != 0, getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0, error == 0 { status = 0 }
        }
        guard status == 0 else {
            close(fd)
            return nil
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        return fd
    }

    /// Copies bytes both ways until either side closes or the proxy shuts down.
    private func relay(_ a: Int32, _ b: Int32) {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var entries = [pollfd(fd: a, events: Int16(POLLIN), revents: 0), pollfd(fd: b, events: Int16(POLLIN), revents: 0)]
        while isRunning {
            let ready = poll(&entries, 2, 100)
            if ready < 0 && errno != EINTR { return }
            guard ready > 0 else { continue }
            for (index, entry) in entries.enumerated() where entry.revents != 0 {
                let count = read(entry.fd, &buffer, buffer.count)
                guard count > 0, writeAll(index == 0 ? b : a, Array(buffer[0..<count])) else { return }
            }
        }
    }

    private func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return false }
            offset += written
        }
        return true
    }

    private func reply(_ fd: Int32, _ status: String) {
        _ = writeAll(fd, Array("HTTP/1.1 \(status)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8))
    }

    /// The `Location` of a 3xx response head, if any.
    static func redirectTarget(_ head: [UInt8]) -> String? {
        let lines = String(decoding: head, as: UTF8.self).split(separator: "\r\n")
        guard let status = lines.first?.split(separator: " ").dropFirst().first, status.hasPrefix("3") else { return nil }
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":"), line[..<colon].lowercased() == "location" else { continue }
            return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return nil
    }

    /// The scheme of an absolute URI reference (nil for a relative one), lower case.
    static func scheme(of reference: String) -> String? {
        guard let colon = reference.firstIndex(of: ":") else { return nil }
        let scheme = reference[..<colon]
        guard let first = scheme.first, first.isLetter, scheme.allSatisfy({ $0.isLetter || $0.isNumber || "+-.".contains($0) }) else {
            return nil
        }
        return scheme.lowercased()
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }

    // MARK: - Requests

    /// A proxy request as FFmpeg writes it: `CONNECT host:port HTTP/1.1` or
    /// `METHOD http://host[:port]/path HTTP/1.1`, then headers.
    struct Request {
        let host: String
        let port: UInt16
        let isTunnel: Bool
        /// For plain http: the head with the request line in origin form.
        let forwardedHead: [UInt8]

        init?(_ head: [UInt8]) {
            guard let text = String(validating: head, as: UTF8.self), let lineEnd = text.range(of: "\r\n") else { return nil }
            let parts = text[..<lineEnd.lowerBound].split(separator: " ")
            guard parts.count == 3 else { return nil }
            let method = String(parts[0])
            let target = String(parts[1])
            if method == "CONNECT" {
                guard let (host, port) = Self.authority(target, defaultPort: 443) else { return nil }
                self.host = host
                self.port = port
                isTunnel = true
                forwardedHead = []
                return
            }
            guard target.lowercased().hasPrefix("http://") else { return nil }
            let afterScheme = target.dropFirst("http://".count)
            let authority = afterScheme.prefix { $0 != "/" && $0 != "?" }
            guard !authority.contains("@"), let (host, port) = Self.authority(String(authority), defaultPort: 80) else { return nil }
            var path = String(afterScheme.dropFirst(authority.count))
            if !path.hasPrefix("/") { path = "/" + path }
            self.host = host
            self.port = port
            isTunnel = false
            forwardedHead = Array("\(method) \(path) \(parts[2])".utf8) + Array(text[lineEnd.lowerBound...].utf8)
        }

        /// `host:port`, `[v6]:port` or a bare host; the host lower case, without brackets.
        static func authority(_ text: String, defaultPort: UInt16) -> (String, UInt16)? {
            var host = Substring(text)
            var port = defaultPort
            if text.hasPrefix("[") {
                guard let close = text.firstIndex(of: "]") else { return nil }
                host = text[text.index(after: text.startIndex)..<close]
                let tail = text[text.index(after: close)...]
                if !tail.isEmpty {
                    guard tail.hasPrefix(":"), let value = UInt16(tail.dropFirst()) else { return nil }
                    port = value
                }
            } else if let colon = text.lastIndex(of: ":") {
                guard let value = UInt16(text[text.index(after: colon)...]) else { return nil }
                host = text[..<colon]
                port = value
            }
            guard !host.isEmpty, port > 0 else { return nil }
            return (host.lowercased(), port)
        }
    }
}
