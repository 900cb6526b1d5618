import EmberKafka
import EmberModel
import EmberPipeline
import Foundation
import Testing

/// `ember run` with `model.precision` bf16 and fp32 on the same events (real broker,
/// real media, real weights).
@Suite(
    "Worker precision", .serialized,
    .enabled(if: WorkerHarness.isAvailable, "needs EMBER_TEST_BROKERS and the omni-small model (Ops/test provides both)"))
struct WorkerPrecisionTests {
    @Test("bf16 records carry model …+bf16 and vectors within cosine 0.999 of the fp32 worker's, item by item",
          .enabled(if: ComputePrecision.bf16Available, "needs AVX512-BF16"))
    func bf16AgainstFP32() throws {
        let samples = try WorkerHarness.samples()
        let topics = WorkerHarness.Topics("e2e-precision")
        try WorkerHarness.createTopics(topics, partitions: 2)
        let events = Array(samples.events.prefix(6))
        try WorkerHarness.produce(events, to: topics.input)

        var vectors: [String: [String: [Float]]] = [:]
        var models: [String: Set<String>] = [:]
        for precision in ["bf16", "fp32"] {
            let run = WorkerHarness.Topics(input: topics.input, output: "\(topics.output)-\(precision)", deadLetter: topics.deadLetter,
                                           group: "\(topics.group)-\(precision)")
            let admin = try KafkaAdmin(bootstrapServers: WorkerHarness.brokers!)
            try admin.ensureTopics([KafkaTopicSpec(name: run.output, partitions: 2)])
            let worker = try WorkerProcess.run(
                group: run.group, topics: run, samples: samples, name: precision,
                settings: ["model.precision=\(precision)", "output.encoding=f32"])
            let outputs = try WorkerHarness.waitFor(run.output, seconds: 240, while: worker) { $0.count >= events.count }
            #expect(worker.stop() == 0, "\(worker.logTail())")
            #expect(worker.log.contains("precision=\(precision)"), "the start-up log names the precision")
            let records = try WorkerHarness.records(outputs)
            #expect(records.count == events.count)
            models[precision] = Set(records.map(\.model))
            vectors[precision] = Dictionary(records.map { ($0.itemID, $0.vector ?? []) }) { a, _ in a }
        }
        let fp32Model = try #require(models["fp32"]?.first)
        #expect(models["fp32"]?.count == 1 && fp32Model.hasPrefix("omni-small@") && !fp32Model.hasSuffix("+bf16"))
        #expect(models["bf16"] == [fp32Model + "+bf16"])
        #expect(Set(vectors["bf16"]!.keys) == Set(vectors["fp32"]!.keys))
        var differing = 0
        for (item, rounded) in vectors["bf16"]! {
            let exact = try #require(vectors["fp32"]?[item])
            #expect(rounded.count == 2048 && exact.count == 2048)
            let dot = zip(rounded, exact).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            #expect(dot >= 0.999, "\(item): cosine \(dot) (both unit norm)")
            if rounded != exact { differing += 1 }
        }
        #expect(differing == events.count, "bf16 changes every item's bits: the setting reached the engine")
    }
}
