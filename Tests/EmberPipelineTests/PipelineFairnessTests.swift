import EmberKafka
import Foundation
import Logging
import Testing
@testable import EmberPipeline

/// Fairness between partitions under backpressure, with the real group consumer on
/// librdkafka's mock cluster: pausing and resuming is where librdkafka's fetch order
/// decides which partition's messages reach the window first.
@Suite("Pipeline fairness between partitions")
struct PipelineFairnessTests {
    @Test("with a backlog on two partitions and a small window, both partitions make progress from the start")
    func bothPartitionsProgress() throws {
        let cluster = try KafkaMockCluster(brokers: 1)
        let topic = "fair.in"
        try cluster.createTopic(topic, partitions: 2)
        let perPartition = 200
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(bootstrapServers: cluster.bootstrapServers))
        for i in 0..<perPartition {
            for partition in 0..<2 {
                let event = #"{"item_id":"p\#(partition)-\#(i)","title":"item \#(i)"}"#
                try producer.send(
                    KafkaProducerRecord(topic: topic, partition: KafkaPartition(Int32(partition)), value: Array(event.utf8))) { _ in }
            }
        }
        try producer.flush(timeout: .seconds(10))
        try producer.close(timeout: .seconds(5))

        var consumerConfiguration = KafkaConsumerConfiguration(bootstrapServers: cluster.bootstrapServers, groupID: "fair", topics: [topic])
        // As `ember run` sets it for this window (max_in_flight / 4).
        consumerConfiguration.maxMessagesPerPoll = 2
        let input = try KafkaConsumer(configuration: consumerConfiguration)
        let output = FakeOutput()
        let processor = FakeProcessor(prepareDelay: 0.005)
        let configuration = fakeConfiguration {
            $0.maxInFlight = 8
            $0.resumeBelow = 4
        }
        let pipeline = try EmbeddingPipeline(
            configuration: configuration, input: input, output: output, processor: processor, logger: Logger(label: "fairness-test"))
        pipeline.start()
        let total = 2 * perPartition
        let finished = eventually(120) { output.records(on: "out").count >= total }
        pipeline.requestStop()
        try pipeline.waitUntilFinished()
        #expect(finished, "all \(total) items embedded, got \(output.records(on: "out").count)")

        // The order the outputs were acknowledged in: the first quarter of them must
        // hold a fair part of each partition's backlog, not one partition's alone.
        let order = output.records(on: "out").compactMap { $0.key.map { String(decoding: $0, as: UTF8.self) } }
        let early = order.prefix(total / 4)
        let fromPartition0 = early.filter { $0.hasPrefix("p0-") }.count
        let fromPartition1 = early.filter { $0.hasPrefix("p1-") }.count
        #expect(
            fromPartition0 >= early.count / 4 && fromPartition1 >= early.count / 4,
            "of the first \(early.count) items, \(fromPartition0) came from partition 0 and \(fromPartition1) from partition 1")
        #expect(Set(order).count == total, "every item embedded")
    }
}
