import EmberKafka
import EmberModel
import EmberPipeline
import Foundation
import Testing

/// The README's semantic-ID round trip with the real binary: `ember replay` the uploads
/// into a topic, `ember codebook train` on it, `ember run` with the codebook.
@Suite(
    "Semantic IDs end to end", .serialized,
    .enabled(if: WorkerHarness.isAvailable, "needs EMBER_TEST_BROKERS and the omni-small model (Ops/test provides both)"))
struct SemanticIDEndToEndTests {
    /// Runs `ember` with `arguments` to completion; returns its exit status and output.
    private func ember(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: WorkerHarness.binary)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }

    private func temporaryFile(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("\(UUID().uuidString.prefix(8))-\(name)").path
    }

    @Test("replay → codebook train → run: every record's semantic_id equals a direct assignment with the saved codebook")
    func roundTrip() throws {
        let samples = try WorkerHarness.samples()
        let topics = WorkerHarness.Topics("e2e-semantic")
        try WorkerHarness.createTopics(topics, partitions: 3)
        try WorkerHarness.produce(samples.events, to: topics.input)

        // 1. Backfill the uploads into a training topic (default JSON, f16).
        let training = WorkerHarness.Topics("e2e-semantic-training")
        let admin = try KafkaAdmin(bootstrapServers: WorkerHarness.brokers!)
        try admin.ensureTopics([KafkaTopicSpec(name: training.output, partitions: 3), KafkaTopicSpec(name: training.deadLetter, partitions: 1)])
        let replay = try WorkerProcess(
            ["replay", "--from-offsets", "0:0,1:0,2:0"],
            topics: WorkerHarness.Topics(input: topics.input, output: training.output, deadLetter: training.deadLetter, group: training.group),
            samples: samples, name: "replay")
        #expect(replay.wait() == 0, "\(replay.logTail())")

        // 2. Train on it (50 items: 3 levels of 8 codes).
        let codebookPath = temporaryFile("codebook.safetensors")
        defer { try? FileManager.default.removeItem(atPath: codebookPath) }
        let train = try ember([
            "codebook", "train", "--topic", training.output, "--brokers", WorkerHarness.brokers!, "--levels", "3", "--codes", "8", "--seed", "7",
            "-o", codebookPath,
        ])
        #expect(train.status == 0, "\(train.output)")
        #expect(train.output.contains("training 3 × 8 codes on \(samples.events.count) vectors of 2048 dims for omni-small@"), "\(train.output)")
        #expect(train.output.contains("perplexity per level: L0 "), "\(train.output)")
        #expect(train.output.contains("full-code collisions: "), "\(train.output)")
        let codebook = try Codebook(contentsOf: URL(fileURLWithPath: codebookPath))
        #expect(codebook.sizes == [8, 8, 8] && codebook.statistics.items == samples.events.count)

        // 3. Run with the codebook; protobuf records with f32 vectors, so the test can
        //    assign the exact vector itself.
        let worker = try WorkerProcess.run(
            group: topics.group, topics: topics, samples: samples, name: "semantic",
            settings: ["model.codebook=\(codebookPath)", "output.format=protobuf", "output.encoding=f32"])
        let outputs = try WorkerHarness.waitFor(topics.output, seconds: 240, while: worker) { $0.count >= samples.events.count }
        #expect(worker.stop() == 0, "\(worker.logTail())")
        #expect(worker.log.contains("codebook loaded"))
        #expect(codebook.modelID.hasPrefix("omni-small@"))
        BLASThreads.count = 1  // as the worker (model.threads 1)
        for message in outputs {
            #expect(message.header("content-type") == Array(RecordFormat.protobuf.contentType.utf8))
            let record = try RecordFormat.protobuf.decode(message.value)
            #expect(record.model == codebook.modelID)
            let vector = try #require(record.vector)
            let expected = try codebook.codes(for: vector)
            #expect(record.semanticID == expected, "\(record.itemID)")
            #expect(record.semanticIDString == Codebook.string(expected))
        }
        #expect(Set(outputs.compactMap { try? RecordFormat.protobuf.decode($0.value).itemID }).count == samples.events.count)
    }

    @Test("a codebook trained for another model stops start-up with an error naming both model ids")
    func modelMismatch() throws {
        let samples = try WorkerHarness.samples()
        let topics = WorkerHarness.Topics("e2e-semantic-mismatch")
        try WorkerHarness.createTopics(topics, partitions: 1)
        let vectors = (0..<(16 * 2048)).map { Float(($0 * 7919) % 101) / 101 }
        let codebook = try ResidualKMeans(.init(sizes: [4])).train(vectors, count: 16, dim: 2048, modelID: "omni-small@000000000000")
        let path = temporaryFile("other-model.safetensors")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try codebook.write(to: URL(fileURLWithPath: path))
        let worker = try WorkerProcess.run(group: topics.group, topics: topics, samples: samples, name: "mismatch", settings: ["model.codebook=\(path)"])
        #expect(worker.wait() != 0)
        let log = worker.log
        #expect(log.contains("the codebook was trained for model omni-small@000000000000, but the model is omni-small@"), "\(worker.logTail())")
        #expect(log.contains("model.codebook \(path)"))
    }
}
