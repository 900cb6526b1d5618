import EmberKafka
import EmberPipeline
import Foundation
import Testing

/// What operators and their tooling rely on, on a running `ember run`: `/healthz` and
/// `/readyz` on the metrics port, and every metric the Grafana dashboard and the
/// Prometheus alert rules in Ops/deploy/ use actually being exported.
@Suite(
    "Worker operations", .serialized,
    .enabled(if: WorkerHarness.isAvailable, "needs EMBER_TEST_BROKERS and the omni-small model (Ops/test provides both)"))
struct WorkerOperationsTests {
    /// Status code and body of a GET (curl; 503 is an answer, not a failure).
    static func get(_ url: String) throws -> (status: Int, body: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["curl", "-s", "--max-time", "10", "-w", "\n%{http_code}", url]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        let status = Int(text.split(separator: "\n").last ?? "") ?? 0
        return (status, String(text.dropLast(String(status).count)))
    }

    /// Polls `url` until it answers `status` (or the timeout passes); the last answer.
    static func waitFor(_ url: String, status: Int, seconds: Double, while worker: WorkerProcess) throws -> (status: Int, body: String) {
        let deadline = Date().addingTimeInterval(seconds)
        var answer = (status: 0, body: "")
        while Date() < deadline {
            answer = try get(url)
            if answer.status == status { return answer }
            if !worker.isRunning { throw HarnessError("the worker exited early:\n\(worker.logTail())") }
            Thread.sleep(forTimeInterval: 0.25)
        }
        return answer
    }

    /// `ember_…` metric families named in the dashboard and the alert rules.
    static func referencedMetrics() throws -> Set<String> {
        let files = ["Ops/deploy/grafana/ember-dashboard.json", "Ops/deploy/prometheus/ember-alerts.yaml"]
        var names = Set<String>()
        for file in files {
            let text = try String(contentsOfFile: WorkerHarness.repository.appendingPathComponent(file).path, encoding: .utf8)
            for match in text.matches(of: /ember_[a-z0-9_]+/) {
                var name = String(match.0)
                for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) && name != "ember_dead_letters_total" {
                    name = String(name.dropLast(suffix.count))
                }
                names.insert(name)
            }
        }
        return names
    }

    @Test("health, readiness (joined with partitions, then idle-but-joined) and every dashboard and alert metric exported")
    func healthAndMetrics() throws {
        let samples = try WorkerHarness.samples()
        let topics = WorkerHarness.Topics("e2e-ops")
        // One input partition: the second worker of the group is idle but joined.
        try WorkerHarness.createTopics(topics, partitions: 1)
        try WorkerHarness.produce(Array(samples.events.prefix(4)) + [samples.badEvents[0]], to: topics.input)

        let port = WorkerHarness.freePort()
        let base = "http://127.0.0.1:\(port)"
        let worker = try WorkerProcess.run(
            group: topics.group, topics: topics, samples: samples, name: "ops",
            settings: ["metrics.prometheus_port=\(port)", "metrics.prometheus_host=127.0.0.1"])
        let ready = try Self.waitFor(base + "/readyz", status: 200, seconds: 60, while: worker)
        #expect(ready.status == 200, "\(ready.body)\n\(worker.logTail())")
        #expect(ready.body.contains("group: joined with 1 partitions"), "\(ready.body)")
        #expect(ready.body.contains("ok   model: omni-small@"), "\(ready.body)")
        #expect(ready.body.contains("ok   brokers: answered"), "\(ready.body)")

        let live = try Self.get(base + "/healthz")
        #expect(live.status == 200, "\(live.body)")
        for thread in ["consumer", "embed.0", "embed.1", "decode.0", "decode.1"] {
            #expect(live.body.contains("\(thread): "), "\(live.body)")
        }
        #expect(try Self.get(base + "/nothing").status == 404)

        _ = try WorkerHarness.waitFor(topics.output, seconds: 120, while: worker) { $0.count >= 4 }
        _ = try WorkerHarness.waitFor(topics.deadLetter, seconds: 30, while: worker) { $0.count >= 1 }

        // A second member of the group gets no partition: ready, idle.
        let idlePort = WorkerHarness.freePort()
        let idle = try WorkerProcess.run(
            group: topics.group, topics: topics, samples: samples, name: "ops-idle",
            settings: ["metrics.prometheus_port=\(idlePort)", "metrics.prometheus_host=127.0.0.1"])
        let idleReady = try Self.waitFor("http://127.0.0.1:\(idlePort)/readyz", status: 200, seconds: 60, while: idle)
        #expect(idleReady.status == 200, "\(idleReady.body)\n\(idle.logTail())")
        // Whichever member holds the partition, one of the two is the idle one.
        let answers = [idleReady.body, try Self.get(base + "/readyz").body]
        #expect(answers.contains { $0.contains("joined, idle") }, "\(answers)")
        #expect(answers.contains { $0.contains("joined with 1 partitions") }, "\(answers)")

        // Every metric the dashboard and the alerts use is exported (histograms by family).
        let exposition = try Self.get(base + "/metrics")
        #expect(exposition.status == 200)
        let exported = Set(exposition.body.matches(of: #/\# TYPE (ember_[a-z0-9_]+) /#).map { String($0.1) })
        let referenced = try Self.referencedMetrics()
        #expect(referenced.count >= 10, "\(referenced)")
        #expect(referenced.subtracting(exported).sorted() == [], "referenced but not exported; exported: \(exported.sorted())")
        #expect(exposition.body.contains(/\nember_consumer_lag 0(\.0)?\n/), "all 5 events done: no lag")

        #expect(idle.stop() == 0, "\(idle.logTail())")
        #expect(worker.stop() == 0, "\(worker.logTail())")
    }
}
