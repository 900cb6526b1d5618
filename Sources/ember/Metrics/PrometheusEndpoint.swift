import Foundation
import Logging
import Metrics
import Prometheus

#if canImport(Glibc)
    import Glibc
#endif

/// Serves the process's swift-metrics as Prometheus text on `GET /metrics`.
///
/// A minimal HTTP/1.1 responder on one Dispatch thread: Prometheus scrapes a few
/// times a minute, so one blocking accept loop is enough, and it keeps an HTTP server
/// framework (and its build time) out of the worker. Requests are read with a 2 s
/// timeout and answered with `Connection: close`.
final class PrometheusEndpoint: @unchecked Sendable {
    private let registry: PrometheusCollectorRegistry
    private let socketDescriptor: Int32
    let port: UInt16
    private let logger: Logger

    /// Bootstraps swift-metrics with a Prometheus registry and starts listening. Call
    /// once per process, before any metric is created.
    static func bootstrap(host: String, port: UInt16, logger: Logger) throws -> PrometheusEndpoint {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.valueHistogramBuckets["ember_batch_size"] = [1, 2, 4, 8, 16, 32, 64]
        MetricsSystem.bootstrap(factory)
        return try PrometheusEndpoint(registry: registry, host: host, port: port, logger: logger)
    }

    private init(registry: PrometheusCollectorRegistry, host: String, port: UInt16, logger: Logger) throws {
        self.registry = registry
        self.logger = logger
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw EndpointError("cannot create a socket: \(String(cString: strerror(errno)))") }
        var reuse: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            close(fd)
            throw EndpointError("metrics.prometheus_host must be an IPv4 address, got '\(host)'")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound, listen(fd, 16) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw EndpointError("cannot listen on \(host):\(port) for metrics: \(reason)")
        }
        socketDescriptor = fd
        self.port = UInt16(bigEndian: address.sin_port)
        DispatchQueue(label: "ember.metrics.http").async { [self] in acceptLoop() }
        logger.info("Prometheus metrics endpoint", metadata: ["address": "http://\(host):\(self.port)/metrics"])
    }

    private func acceptLoop() {
        while true {
            let client = accept(socketDescriptor, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                return  // the listening socket was closed
            }
            respond(client)
            close(client)
        }
    }

    private func respond(_ client: Int32) {
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var request = [UInt8](repeating: 0, count: 4096)
        let received = recv(client, &request, request.count, 0)
        guard received > 0 else { return }
        let line = String(decoding: request.prefix(received).prefix { $0 != 13 && $0 != 10 }, as: UTF8.self)
        let parts = line.split(separator: " ")
        let (status, contentType, body): (String, String, [UInt8])
        if parts.count >= 2, parts[0] == "GET", parts[1] == "/metrics" || parts[1].hasPrefix("/metrics?") {
            (status, contentType, body) = ("200 OK", "text/plain; version=0.0.4; charset=utf-8", registry.emitToBuffer())
        } else {
            (status, contentType, body) = ("404 Not Found", "text/plain; charset=utf-8", Array("only GET /metrics is served\n".utf8))
        }
        let head = "HTTP/1.1 \(status)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        sendAll(client, Array(head.utf8) + body)
    }

    private func sendAll(_ client: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { return }
            offset += sent
        }
    }

    func stop() {
        shutdown(socketDescriptor, Int32(SHUT_RDWR))
        close(socketDescriptor)
    }
}

struct EndpointError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
