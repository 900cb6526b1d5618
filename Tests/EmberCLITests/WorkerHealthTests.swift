import Foundation
import EmberPipeline
import Testing
@testable import ember

/// `/healthz` and `/readyz` answers as start-up proceeds (the HTTP side is tested on a
/// running worker in EmberWorkerTests).
@Suite("Worker health")
struct WorkerHealthTests {
    @Test("readiness fails until the model is loaded and Kafka has been checked")
    func notReadyAtStart() {
        let health = WorkerHealth(stallSeconds: 300, needsGroup: true)
        let report = health.readiness()
        #expect(!report.ok)
        #expect(report.body.contains("FAIL model: not loaded yet"))
        #expect(report.body.contains("FAIL brokers: not checked yet"))
        #expect(report.body.contains("FAIL group: consumer not started yet"))
        health.modelLoaded("omni-small@abc")
        #expect(health.readiness().body.contains("ok   model: omni-small@abc"))
        #expect(!health.readiness().ok)
    }

    @Test("readiness fails once draining starts, whatever else is fine; liveness does not")
    func notReadyWhileDraining() {
        let health = WorkerHealth(stallSeconds: 300, needsGroup: false)
        health.modelLoaded("omni-small@abc")
        health.drainStarted()
        let report = health.readiness()
        #expect(!report.ok)
        #expect(report.body.contains("FAIL draining: shutting down"), "\(report.body)")
        #expect(health.liveness().ok)
    }

    @Test("liveness: ok while starting, STALLED (503) when a thread is busy past the bound, idle threads are fine")
    func liveness() throws {
        let health = WorkerHealth(stallSeconds: 0.05, needsGroup: false)
        #expect(health.liveness().ok)
        let heartbeats = StageHeartbeats()
        let consumer = heartbeats.register("consumer")
        let decode = heartbeats.register("decode.0")
        heartbeats.idle(decode)
        health.watch(heartbeats)
        heartbeats.beat(consumer)
        #expect(health.liveness().ok, "\(health.liveness().body)")
        heartbeats.busy(decode)
        Thread.sleep(forTimeInterval: 0.1)
        heartbeats.beat(consumer)
        let report = health.liveness()
        #expect(!report.ok)
        #expect(report.body.contains("decode.0: STALLED"), "\(report.body)")
        #expect(report.body.contains("consumer: busy"))
        heartbeats.finish(decode)
        #expect(health.liveness().ok)
        #expect(health.liveness().body.contains("decode.0: stopped"))
    }
}
