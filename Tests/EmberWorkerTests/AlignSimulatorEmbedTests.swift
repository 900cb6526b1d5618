import Foundation
import Testing

/// `Ops/align-sim embed` and `evaluate-raw` on the tiny simulated world with the real
/// binary: every item comes back as an Ember record through `ember replay` on the test
/// broker, and the evaluation reads them (EmberCLITests checks the generator itself).
@Suite(
    "Alignment simulator embedding", .serialized,
    .enabled(if: WorkerHarness.isAvailable, "needs EMBER_TEST_BROKERS and the omni-small model (Ops/test provides both)"))
struct AlignSimulatorEmbedTests {
    private func alignSim(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = WorkerHarness.repository.appendingPathComponent("Ops/align-sim")
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Drain stderr on its own thread so a chatty child cannot block on a full pipe.
        nonisolated(unsafe) var errorText = ""
        let reader = Thread { errorText = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) }
        reader.start()
        let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        while !reader.isFinished { Thread.sleep(forTimeInterval: 0.01) }
        return (process.terminationStatus, output, errorText)
    }

    @Test("embed via ember replay: one omni-small record per item; evaluate-raw reads them")
    func embedAndEvaluate() throws {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("ember-align-sim-embed-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let generated = try alignSim(["generate", dir, "--tiny"])
        try #require(generated.status == 0, "\(generated.stderr)")
        let embedded = try alignSim(["embed", dir, "--brokers", WorkerHarness.brokers!, "--ember", WorkerHarness.binary])
        try #require(embedded.status == 0, "\(embedded.stderr)")
        #expect(embedded.stderr.contains("60 items embedded"), "\(embedded.stderr)")

        let items = try String(contentsOfFile: dir + "/items.jsonl", encoding: .utf8).split(separator: "\n")
            .map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        let records = try String(contentsOfFile: dir + "/embeddings.jsonl", encoding: .utf8).split(separator: "\n")
            .map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        #expect(records.map { $0["item_id"] as? String } == items.map { $0["item_id"] as? String })
        for record in records {
            #expect(record["dim"] as? Int == 2048)
            #expect((record["model"] as? String)?.hasPrefix("omni-small@") == true)
            let modalities = try #require(record["modalities"] as? [String: Any])
            #expect(modalities["vision_frames"] as? Int == 3, "2 keyframes and the cover: \(modalities)")
            #expect(((modalities["audio_seconds"] as? Double) ?? 0) > 1.5)
            #expect(((modalities["text_tokens"] as? Int) ?? 0) > 3)
            #expect(((record["embedding"] as? String)?.count ?? 0) == 5464)   // base64 of 2048 f16
        }

        let evaluated = try alignSim(["evaluate-raw", dir, "--json", "--k", "10"])
        try #require(evaluated.status == 0, "\(evaluated.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(evaluated.stdout.utf8)) as? [String: Any])
        #expect(report["items"] as? Int == 60 && report["cold_items"] as? Int == 12 && report["users"] as? Int == 60)
        let rows = try #require(report["results"] as? [[String: Any]])
        let byName = Dictionary(uniqueKeysWithValues: rows.map { ($0["vectors"] as! String, $0) })
        #expect(byName["raw"]?["dim"] as? Int == 2048)
        // The true ID vectors are where the neighbour lists come from: recall 1 by construction.
        #expect(byName["oracle id"]?["id_neighbours"] as? Double == 1.0)
        for row in rows {
            for key in ["next_item_all", "next_item_cold", "id_neighbours"] {
                let value = try #require(row[key] as? Double, "\(row)")
                #expect(value >= 0 && value <= 1, "\(row)")
            }
        }
    }
}
