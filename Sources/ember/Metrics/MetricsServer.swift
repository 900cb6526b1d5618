import EmberPipeline
import FlyingFox
import Foundation
import Logging
import Metrics
import Prometheus

/// The worker's HTTP listener (`metrics.prometheus_host:metrics.prometheus_port`):
///
/// - `GET /metrics`: swift-metrics as Prometheus text (swift-prometheus);
/// - `GET /healthz`: liveness, 200 or 503 with one line per pipeline thread;
/// - `GET /readyz`: readiness, 200 or 503 with one line per check.
///
/// Served by FlyingFox (a small HTTP/1.1 server on Swift concurrency, no SwiftNIO):
/// its cold build costs little next to Hummingbird's (README, "HTTP server"). The
/// handlers only read state the pipeline keeps up to date, so they never block the
/// cooperative pool.
final class MetricsServer: Sendable {
    let port: UInt16
    private let task: Task<Void, Never>

    /// Bootstraps swift-metrics with a Prometheus registry and starts listening. Call
    /// once per process, before any metric is created.
    static func bootstrap(host: String, port: UInt16, health: WorkerHealth, logger: Logger) async throws -> MetricsServer {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.valueHistogramBuckets["ember_batch_size"] = [1, 2, 4, 8, 16, 32, 64]
        MetricsSystem.bootstrap(factory)
        // Process gauges: a changing start time counts restarts, RSS is read at each scrape.
        Gauge(label: "ember_process_start_time_seconds").record(Date().timeIntervalSince1970)
        let residentMemory = Gauge(label: "ember_resident_memory_bytes")

        let address: sockaddr_in
        do {
            address = try .inet(ip4: host, port: port)
        } catch {
            throw EndpointError("metrics.prometheus_host must be an IPv4 address, got '\(host)'")
        }
        let server = HTTPServer(address: address, timeout: 5, logger: .disabled)
        await server.appendRoute("GET /metrics") { _ in
            if let megabytes = ResidentMemory.currentMegabytes() { residentMemory.record(megabytes << 20) }
            return HTTPResponse(
                statusCode: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: Data(registry.emitToBuffer()))
        }
        await server.appendRoute("GET /healthz") { _ in Self.response(health.liveness()) }
        await server.appendRoute("GET /readyz") { _ in Self.response(health.readiness()) }

        let failure = Failure()
        let task = Task {
            do {
                try await server.run()
            } catch is CancellationError {
            } catch {
                failure.set(error)
                logger.error("metrics endpoint stopped", metadata: ["error": "\(error)"])
            }
        }
        do {
            try await server.waitUntilListening(timeout: 5)
        } catch {
            task.cancel()
            throw EndpointError("cannot listen on \(host):\(port) for metrics: \(failure.error.map { "\($0)" } ?? "\(error)")")
        }
        logger.info(
            "metrics endpoint", metadata: ["metrics": "http://\(host):\(port)/metrics", "health": "/healthz /readyz"])
        return MetricsServer(port: port, task: task)
    }

    private init(port: UInt16, task: Task<Void, Never>) {
        self.port = port
        self.task = task
    }

    private static func response(_ report: WorkerHealth.Report) -> HTTPResponse {
        HTTPResponse(
            statusCode: report.ok ? .ok : .serviceUnavailable, headers: [.contentType: "text/plain; charset=utf-8"],
            body: Data(report.body.utf8))
    }

    /// Stops listening (cancelling the server's task closes its socket).
    func stop() { task.cancel() }

    private final class Failure: @unchecked Sendable {
        private let lock = NSLock()
        private var stored: (any Error)?
        func set(_ error: any Error) { lock.withLock { stored = error } }
        var error: (any Error)? { lock.withLock { stored } }
    }
}

struct EndpointError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
