import EmberKafka
import EmberModel
import EmberPipeline
import Foundation
import Testing

/// `$EMBER_QWEN2VL_TINY_ROOT`, else next to omni-small, where `Ops/model-fetch qwen2vl-tiny` writes.
private let sailModel = (ProcessInfo.processInfo.environment["EMBER_QWEN2VL_TINY_ROOT"].flatMap { $0.isEmpty ? nil : $0 }
    ?? URL.defaultModelDirectory.deletingLastPathComponent().path) + "/qwen2vl-tiny-sail"

/// `ember run` with the SAIL-style tiny VLM-fusion model (`Ops/model-fetch qwen2vl-tiny`, which
/// Ops/test runs) selected by model directory: sample videos (frames, cover, speech), a
/// title-only event and a broken video, end to end on the test broker.
@Suite(
    "Worker end to end with a VLM-fusion model", .serialized,
    .enabled(if: WorkerHarness.isAvailable && FileManager.default.fileExists(atPath: sailModel + "/manifest.json"),
             "needs EMBER_TEST_BROKERS and the tiny VLM-fusion models (Ops/test provides both)"))
struct VLMFusionWorkerTests {
    @Test("videos, a title alone and a broken video through ember run --model qwen2vl-tiny-sail: 32-d fused records and a dead letter")
    func fusionWorker() throws {
        let samples = try WorkerHarness.samples()
        let topics = WorkerHarness.Topics("e2e-vlm-fusion")
        try WorkerHarness.createTopics(topics, partitions: 2)
        let titleOnly = String(decoding: try JSONSerialization.data(withJSONObject: ["item_id": "title-only", "title": "我的猫学会了开冰箱 🐱"]),
                               as: UTF8.self)
        let broken = String(decoding: try JSONSerialization.data(withJSONObject: [
            "item_id": "broken", "video_uri": URL(fileURLWithPath: samples.mediaRoot + "/broken.mp4").absoluteString,
        ]), as: UTF8.self)
        let events = Array(samples.events.prefix(4)) + [titleOnly, broken]
        try WorkerHarness.produce(events, to: topics.input)

        let worker = try WorkerProcess.run(group: topics.group, topics: topics, samples: samples, name: "w1", model: sailModel)
        let outputs = try WorkerHarness.waitFor(topics.output, seconds: 240, while: worker) { $0.count >= 5 }
        let deadLetters = try WorkerHarness.waitFor(topics.deadLetter, seconds: 60, while: worker) { $0.count >= 1 }
        #expect(worker.stop() == 0, "\(worker.logTail())")
        #expect(worker.logTail(400).contains("fusion=qwen2-vl-fusion"), "the start-up log names the fused model")
        let records = try WorkerHarness.records(outputs)
        #expect(Set(records.map(\.itemID)) == Set(["sample-0", "sample-1", "sample-2", "sample-3", "title-only"]), "\(worker.logTail())")
        for record in records {
            #expect(record.model.hasPrefix("qwen2vl-tiny-sail@") && record.dim == 32 && record.matryoshka == 32, "\(record.itemID): \(record.model)")
            let vector = try #require(record.vector)
            #expect(vector.count == 32 && abs(vector.reduce(0) { $0 + $1 * $1 } - 1) < 1e-2)  // f16 on the wire
        }
        // The sample videos bring keyframes, the cover and 4 s of speech (one audio chunk); the title alone only text.
        for record in records where record.itemID.hasPrefix("sample-") {
            #expect(record.modalities.visionFrames >= 2 && abs(record.modalities.audioSeconds - 4) < 0.2 && record.modalities.textTokens > 5,
                    "\(record.itemID): \(record.modalities)")
        }
        let title = try #require(records.first { $0.itemID == "title-only" })
        #expect(title.modalities.visionFrames == 0 && title.modalities.audioSeconds == 0 && title.modalities.textTokens > 5)
        let classes = deadLetters.map { String(decoding: $0.header("ember-error-class") ?? [], as: UTF8.self) }
        #expect(classes == ["media_invalid"], "\(classes)")
    }
}
