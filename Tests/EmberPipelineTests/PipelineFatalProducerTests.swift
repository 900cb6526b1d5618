import EmberKafka
import Foundation
import Logging
import Testing
@testable import EmberPipeline

/// A real librdkafka fatal producer error (raised on the mock cluster) in the running
/// pipeline: the worker must stop instead of staying in the group as a zombie.
@Suite("Pipeline with a fatal producer error (mock cluster)")
struct PipelineFatalProducerTests {
    @Test("a fatal producer error stops the pipeline with that error and commits nothing past the acknowledged offsets")
    func fatalProducerStopsWorker() throws {
        let cluster = try KafkaMockCluster(brokers: 1)
        let (topic, output, deadLetters) = ("fatal.in", "fatal.out", "fatal.dlq")
        try cluster.createTopic(topic, partitions: 1)
        try cluster.createTopic(output, partitions: 1)
        try cluster.createTopic(deadLetters, partitions: 1)
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(bootstrapServers: cluster.bootstrapServers))
        let count = 12
        for index in 0..<count {
            try producer.send(KafkaProducerRecord(topic: topic, value: fakeMessage(offset: 0, itemID: "item-\(index)").value)) { _ in }
        }
        try producer.flush(timeout: .seconds(10))

        var consumerConfiguration = KafkaConsumerConfiguration(bootstrapServers: cluster.bootstrapServers, groupID: "fatal", topics: [topic])
        consumerConfiguration.sessionTimeout = .seconds(6)
        consumerConfiguration.heartbeatInterval = .seconds(1)
        let consumer = try KafkaConsumer(configuration: consumerConfiguration)
        var configuration = PipelineConfiguration()
        configuration.outputTopic = output
        configuration.deadLetterTopic = deadLetters
        configuration.metricsIntervalSeconds = 0
        configuration.drainTimeoutSeconds = 60
        // In item order: the five acknowledged items are offsets 0–4, so the done watermark is
        // exactly 5 (with a plain semaphore any five decode slots may pass, e.g. 0, 2, 3, 5, 7).
        let processor = FakeProcessor(gatedInItemOrder: true)
        let pipeline = try EmbeddingPipeline(
            configuration: configuration, input: consumer, output: producer, processor: processor, logger: Logger(label: "fatal-test"))
        pipeline.start()
        processor.open(5)
        #expect(eventually(60) { pipeline.metrics.itemsOutTotal == 5 }, "five items acknowledged before the failure")
        // Acknowledged, and marked done (the mark follows the acknowledgement on the delivery thread).
        #expect(eventually(60) { consumer.lag().first?.committable == KafkaOffset(5) }, "\(consumer.lag())")

        producer.triggerFatalErrorForTesting(reason: "test: producer fenced")
        processor.open(count)
        let stopped = DispatchSemaphore(value: 0)
        final class Box: @unchecked Sendable { var error: (any Error)? }
        let box = Box()
        DispatchQueue.global().async {
            do { try pipeline.waitUntilFinished() } catch { box.error = error }
            stopped.signal()
        }
        #expect(stopped.wait(timeout: .now() + 30) == .success, "the worker stops by itself, without a stop request")
        let error = try #require(box.error as? KafkaError, "\(String(describing: box.error))")
        #expect(error.isFatal)
        #expect(pipeline.metrics.itemsOutTotal == 5)

        let partition = KafkaTopicPartition(topic: topic, partition: KafkaPartition(0))
        let committed = try KafkaConsumer(configuration: consumerConfiguration).committedOffsets(for: [partition])
        // Never past the acknowledged work (5). Normally exactly 5, from the commit at
        // close; on a loaded machine that commit can fail, leaving an earlier auto-commit.
        let committedOffset = committed[partition].flatMap { $0?.rawValue } ?? 0
        #expect(committedOffset <= 5, "nothing committed past acknowledged work: \(committedOffset)")
        withExtendedLifetime(cluster) {}
    }
}
