import EmberKafka
import EmberModel
import EmberPipeline
import Foundation
import Testing

/// The worker with a projection head (`model.head`), the real binary on tansu.
@Suite(
    "Aligned head end to end", .serialized,
    .enabled(if: WorkerHarness.isAvailable, "needs EMBER_TEST_BROKERS and the omni-small model (Ops/test provides both)"))
struct AlignedHeadEndToEndTests {
    private func temporaryFile(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("\(UUID().uuidString.prefix(8))-\(name)").path
    }

    /// A seeded 2-layer head over omni-small's 2048-dim vectors (weights ±1/√fan_in).
    private func head(baseModel: String, sizes: [Int] = [256, 128, 64]) throws -> ProjectionHead {
        var g = SeededGenerator(seed: 21)
        let layers = ProjectionHead.Layers.mlp(hidden: 96, activation: .gelu)
        let tensors = layers.tensorShapes(input: 2048, output: sizes[0]).map { shape in
            let bound = 1 / Double(shape.name.hasPrefix("fc2") ? 96 : 2048).squareRoot()
            return (0..<shape.shape.reduce(1, *)).map { _ in Float((g.unit() * 2 - 1) * bound) }
        }
        return try ProjectionHead.make(
            layers: layers, inputDim: 2048, outputDim: sizes[0], matryoshka: sizes, tensors: tensors, name: "align", baseModel: baseModel)
    }

    @Test("every record carries head(raw) at the configured size, the head's model id and the raw fused vector")
    func headApplied() throws {
        let samples = try WorkerHarness.samples()
        let topics = WorkerHarness.Topics("e2e-head")
        try WorkerHarness.createTopics(topics, partitions: 2)
        try WorkerHarness.produce(Array(samples.events.prefix(12)), to: topics.input)
        let manifest = try ModelManifest.load(directory: URL(fileURLWithPath: WorkerHarness.modelDirectory))
        let modelID = "\(manifest.id)@\(manifest.weightsHash)"
        let head = try head(baseModel: modelID)
        let path = temporaryFile("head.safetensors")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try head.write(to: URL(fileURLWithPath: path))

        let worker = try WorkerProcess.run(
            group: topics.group, topics: topics, samples: samples, name: "head",
            settings: ["model.head=\(path)", "model.head_dims=128", "output.raw_vector=true", "output.format=protobuf", "output.encoding=f32"])
        let outputs = try WorkerHarness.waitFor(topics.output, seconds: 240, while: worker) { $0.count >= 12 }
        #expect(worker.stop() == 0, "\(worker.logTail())")
        #expect(worker.log.contains("projection head loaded"))
        #expect(outputs.count == 12)
        BLASThreads.count = 1
        for message in outputs {
            let record = try RecordFormat.protobuf.decode(message.value)
            #expect(record.model == "omni-small+align@\(head.metadata.hash)")
            #expect(message.header("ember-model") == Array(record.model.utf8))
            #expect(record.dim == 128 && record.matryoshka == 128)
            // The raw vector says its precision (model.precision auto: +bf16 on CPUs with AVX512-BF16).
            #expect(record.rawModel.map(ModelIdentity.weights(of:)) == modelID && record.rawDim == 2048)
            let raw = try #require(record.rawVector)
            let vector = try #require(record.vector)
            let expected = head.embed(raw, dims: 128)
            let worst = zip(vector, expected).map { abs($0 - $1) }.max() ?? 1
            #expect(worst < 1e-5, "\(record.itemID): max |record − head(raw)| \(worst)")
            #expect(abs(vector.reduce(0) { $0 + $1 * $1 } - 1) < 1e-4)
        }
    }

    @Test("a bad head file, a head of another model or an untrained size stops start-up with a clear error")
    func badHeads() throws {
        let samples = try WorkerHarness.samples()
        let topics = WorkerHarness.Topics("e2e-head-bad")
        try WorkerHarness.createTopics(topics, partitions: 1)
        let garbage = temporaryFile("garbage.safetensors")
        try Data("not a head".utf8).write(to: URL(fileURLWithPath: garbage))
        let other = temporaryFile("other.safetensors")
        try head(baseModel: "omni-small@000000000000").write(to: URL(fileURLWithPath: other))
        let manifest = try ModelManifest.load(directory: URL(fileURLWithPath: WorkerHarness.modelDirectory))
        let good = temporaryFile("good.safetensors")
        try head(baseModel: "\(manifest.id)@\(manifest.weightsHash)").write(to: URL(fileURLWithPath: good))
        defer { for path in [garbage, other, good] { try? FileManager.default.removeItem(atPath: path) } }
        let cases: [(settings: [String], message: String)] = [
            (["model.head=\(garbage)"], "model.head \(garbage): \(garbage): "),
            (["model.head=\(other)"], "the head was trained on omni-small@000000000000 vectors, but the model is omni-small@"),
            (["model.head=\(good)", "model.head_dims=100"], "model.head_dims 100 is not one of the head's Matryoshka sizes 256, 128, 64"),
        ]
        for (index, c) in cases.enumerated() {
            let worker = try WorkerProcess.run(group: topics.group + "-\(index)", topics: topics, samples: samples, name: "bad-head-\(index)", settings: c.settings)
            #expect(worker.wait() != 0)
            #expect(worker.log.contains(c.message), "\(worker.logTail())")
        }
    }
}
