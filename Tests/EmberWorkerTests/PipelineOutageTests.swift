import EmberKafka
import EmberMedia
import EmberModel
import EmberPipeline
import Foundation
import Logging
import Testing

/// The pipeline in-process on librdkafka's mock cluster, with the real omni-small
/// model, while the only broker goes down and comes back.
@Suite(
    "Pipeline under a broker outage",
    .enabled(if: FileManager.default.fileExists(atPath: URL.defaultModelDirectory.path + "/manifest.json"), "needs the omni-small model (Ops/test fetches it)"))
struct PipelineOutageTests {
    @Test(
        "the worker rides out a broker outage longer than its session: partitions lost and regained, nothing lost, offsets committed",
        arguments: [false, true])
    func brokerOutage(startsWhilePaused: Bool) throws {
        let cluster = try KafkaMockCluster(brokers: 1)
        let (input, output, deadLetters) = ("outage.in", "outage.out", "outage.dlq")
        try cluster.createTopic(input, partitions: 2)
        try cluster.createTopic(output, partitions: 2)
        try cluster.createTopic(deadLetters, partitions: 1)
        let count = 40
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(bootstrapServers: cluster.bootstrapServers))
        for i in 0..<count {
            let event = #"{"item_id":"text-\#(i)","title":"item number \#(i) about cooking pasta","tags":["food"]}"#
            try producer.send(KafkaProducerRecord(topic: input, key: Array("\(i)".utf8), value: Array(event.utf8))) { _ in }
        }
        try producer.flush(timeout: .seconds(10))

        var consumer = KafkaConsumerConfiguration(bootstrapServers: cluster.bootstrapServers, groupID: "outage", topics: [input])
        consumer.sessionTimeout = .seconds(6)
        consumer.heartbeatInterval = .seconds(1)
        consumer.maxMessagesPerPoll = 4
        let kafkaInput = try KafkaConsumer(configuration: consumer)
        let engine = try EmbeddingEngine(modelDirectory: .defaultModelDirectory)
        let processor = GatedProcessor(try MediaModelProcessor(engine: engine, media: MediaConfiguration()))
        var configuration = PipelineConfiguration()
        configuration.outputTopic = output
        configuration.deadLetterTopic = deadLetters
        configuration.maxInFlight = 8
        configuration.resumeBelow = 4
        configuration.retryBackoffSeconds = 0.2
        configuration.metricsIntervalSeconds = 0
        let pipeline = try EmbeddingPipeline(
            configuration: configuration, input: kafkaInput, output: producer, processor: processor,
            logger: Logger(label: "outage-test"))
        pipeline.start()

        func waitUntil(_ seconds: Double, _ condition: () -> Bool) -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if condition() { return true }
                Thread.sleep(forTimeInterval: 0.05)
            }
            return condition()
        }
        #expect(waitUntil(60) { pipeline.metrics.itemsOutTotal >= 5 }, "the pipeline got going")
        if startsWhilePaused {
            // Hold the decoders so the window fills and the input pauses before the
            // outage: librdkafka keeps that pause flag across the loss and reassignment.
            processor.close()
            #expect(waitUntil(30) { processor.waiting >= 2 && kafkaInput.isPaused }, "the input paused with a full window")
        }
        // Longer than the 6 s session timeout: the member loses its partitions, drops
        // their in-flight work, and must get them back and re-process it.
        try cluster.setBrokerDown(1)
        let duringOutage = pipeline.metrics.itemsOutTotal
        Thread.sleep(forTimeInterval: 8)
        #expect(pipeline.metrics.itemsOutTotal <= duringOutage + 8, "at most the in-flight window is acknowledged once the broker is down")
        processor.open()
        try cluster.setBrokerUp(1)
        // Acknowledgements count re-processed items twice, so wait for the distinct ids.
        var ids = Set<String>()
        _ = waitUntil(120) {
            ids = WorkerHarness.itemIDs((try? WorkerHarness.readAll(output, bootstrap: cluster.bootstrapServers)) ?? [])
            return ids.count >= count
        }
        #expect(ids == Set((0..<count).map { "text-\($0)" }), "nothing lost: \(ids.count) of \(count) items")
        pipeline.requestStop()
        try pipeline.waitUntilFinished()
        #expect(pipeline.metrics.deadLettersTotal == 0)

        let inputMessages = try WorkerHarness.readAll(input, bootstrap: cluster.bootstrapServers)
        let partitions = (0..<2).map { KafkaTopicPartition(topic: input, partition: KafkaPartition(Int32($0))) }
        let ends = partitions.map { p in (inputMessages.filter { $0.partition == p.partition }.map(\.offset.rawValue).max() ?? -1) + 1 }
        let committed = try KafkaConsumer(configuration: consumer).committedOffsets(for: partitions)
        #expect(partitions.map { committed[$0].flatMap { $0?.rawValue } } == ends, "committed to the end of every partition")
        try producer.close(timeout: .seconds(5))
    }
}

/// Wraps a processor with a gate in front of `prepare`, so a test can fill the
/// pipeline's window (and pause its input) at a chosen moment.
final class GatedProcessor<Wrapped: ItemProcessor>: ItemProcessor, @unchecked Sendable {
    private let wrapped: Wrapped
    private let condition = NSCondition()
    private var isOpen = true
    private var waitingCount = 0

    init(_ wrapped: Wrapped) { self.wrapped = wrapped }

    var modelID: String { wrapped.modelID }
    var embedsOneByOne: Bool { wrapped.embedsOneByOne }

    func close() { condition.withLock { isOpen = false } }
    func open() {
        condition.withLock {
            isOpen = true
            condition.broadcast()
        }
    }
    /// Decoders held at the gate now.
    var waiting: Int { condition.withLock { waitingCount } }

    func prepare(_ event: UploadEvent) throws(ItemFailure) -> Wrapped.Prepared {
        condition.withLock {
            waitingCount += 1
            while !isOpen { condition.wait() }
            waitingCount -= 1
        }
        return try wrapped.prepare(event)
    }

    func embed(_ batch: [Wrapped.Prepared]) -> [Result<EmbeddedItem, ItemFailure>] { wrapped.embed(batch) }
}
