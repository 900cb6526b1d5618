import EmberKafka
import EmberModel
import EmberPipeline
import Foundation
import Testing

/// `$EMBER_OMNI_BASE_DIR`, else next to omni-small, where `Ops/model-fetch omni-base` writes.
private let omniBaseModel = ProcessInfo.processInfo.environment["EMBER_OMNI_BASE_DIR"].flatMap { $0.isEmpty ? nil : $0 }
    ?? URL.defaultModelDirectory.deletingLastPathComponent().appendingPathComponent("omni-base").path

/// `ember run` with omni-base (`Ops/model-fetch omni-base`, which Ops/test runs) selected by
/// model directory: sample videos and title-only events in Chinese, Japanese and English.
@Suite(
    "Worker end to end with omni-base", .serialized,
    .enabled(if: WorkerHarness.isAvailable && FileManager.default.fileExists(atPath: omniBaseModel + "/manifest.json"),
             "needs EMBER_TEST_BROKERS and the omni-base model (Ops/test provides both)"))
struct OmniBaseWorkerTests {
    @Test("videos and multilingual titles through ember run --model omni-base: 2304-d records, a Chinese title nearest its English translation")
    func multilingualWorker() throws {
        let samples = try WorkerHarness.samples()
        let topics = WorkerHarness.Topics("e2e-omni-base")
        try WorkerHarness.createTopics(topics, partitions: 1)
        let titles = [
            ("zh-cat", "我的猫学会了开冰箱"), ("ja-cat", "うちの猫が冷蔵庫を開けられるようになった"),
            ("en-cat", "My cat learned to open the fridge"), ("en-traffic", "Traffic jam on the highway during the holidays"),
            ("en-bread", "Baking bread for the first time"),
        ]
        let titleEvents = try titles.map { id, title in
            String(decoding: try JSONSerialization.data(withJSONObject: ["item_id": id, "title": title]), as: UTF8.self)
        }
        let events = Array(samples.events.prefix(2)) + titleEvents
        try WorkerHarness.produce(events, to: topics.input)

        let worker = try WorkerProcess.run(group: topics.group, topics: topics, samples: samples, name: "w1", model: omniBaseModel)
        let outputs = try WorkerHarness.waitFor(topics.output, seconds: 240, while: worker) { $0.count >= events.count }
        #expect(worker.stop() == 0, "\(worker.logTail())")
        let records = try WorkerHarness.records(outputs)
        #expect(records.count == events.count, "\(worker.logTail())")
        for record in records {
            #expect(record.model.hasPrefix("omni-base@") && record.dim == 2304, "\(record.itemID): \(record.model) \(record.dim)")
            #expect(record.vector?.count == 2304)
        }
        // The sample videos carry frames and 4 s of speech through the Whisper base encoder.
        for record in records where record.itemID.hasPrefix("sample-") {
            #expect(record.modalities.visionFrames >= 4 && abs(record.modalities.audioSeconds - 4) < 0.2, "\(record.itemID): \(record.modalities)")
        }
        let vectors = Dictionary(uniqueKeysWithValues: records.compactMap { r in r.vector.map { (r.itemID, $0) } })
        func cosine(_ a: String, _ b: String) -> Float {
            zip(vectors[a] ?? [], vectors[b] ?? []).reduce(0) { $0 + $1.0 * $1.1 }
        }
        for source in ["zh-cat", "ja-cat"] {
            let toCat = cosine(source, "en-cat")
            #expect(toCat > cosine(source, "en-traffic") + 0.2 && toCat > cosine(source, "en-bread") + 0.2,
                    "\(source): cat \(toCat), traffic \(cosine(source, "en-traffic")), bread \(cosine(source, "en-bread"))")
        }
    }
}
