import Foundation
import Testing
@testable import EmberKafka

/// Faults a real broker cannot be asked for, on librdkafka's mock cluster.
@Suite("Kafka faults on the mock cluster", .timeLimit(.minutes(2)))
struct MockClusterTests {
    private func producer(_ cluster: KafkaMockCluster, deliveryTimeout: Duration = .seconds(30)) throws -> KafkaProducer {
        var configuration = TestBroker.producerConfiguration(bootstrap: cluster.bootstrapServers)
        configuration.deliveryTimeout = deliveryTimeout
        configuration.properties["retry.backoff.ms"] = "50"
        return try KafkaProducer(configuration: configuration)
    }

    /// Reads `count` messages from the start of `topic` with a fresh group.
    /// Everything in `topic`, read with manual assignment up to the end offsets at the
    /// start of the read (duplicates would be there too). No consumer group: the mock
    /// cluster's group coordinator is slow to admit members on a loaded machine, and
    /// these tests are about what the producer delivered.
    private func consumeAll(_ cluster: KafkaMockCluster, topic: String, count: Int) throws -> [KafkaMessage] {
        var configuration = KafkaReplayConfiguration(bootstrapServers: cluster.bootstrapServers, topic: topic, start: .beginning)
        configuration.clientID = "mock-reader"
        let reader = try KafkaReplay(configuration: configuration)
        var messages: [KafkaMessage] = []
        let deadline = Date().addingTimeInterval(60)
        while !reader.isFinished && Date() < deadline { messages += try reader.poll(timeout: .milliseconds(200)) }
        #expect(reader.isFinished, "read \(messages.count) of the \(count) expected messages within 60 s")
        return messages
    }

    @Test("retriable produce errors are retried and the message is delivered once")
    func retriableErrorsRetried() throws {
        let cluster = try KafkaMockCluster(brokers: 1)
        let topic = TestBroker.uniqueName("retriable")
        try cluster.createTopic(topic, partitions: 1)
        let producer = try producer(cluster)
        _ = try sendAll(producer, [KafkaProducerRecord(topic: topic, value: [0])])  // connection and producer id ready
        cluster.failNextRequests(.produce, with: [.notEnoughReplicas, .requestTimedOut, .notLeaderForPartition])
        let delivery = try sendAll(producer, [KafkaProducerRecord(topic: topic, key: [1], value: [1, 2, 3])])[0].get()
        #expect(delivery.offset == KafkaOffset(1))
        try producer.close(timeout: .seconds(5))
        let messages = try consumeAll(cluster, topic: topic, count: 2)
        #expect(messages.map(\.value) == [[0], [1, 2, 3]], "delivered exactly once despite three failed attempts")
        withExtendedLifetime(cluster) {}
    }

    @Test("a non-retriable produce error reaches the caller's delivery callback")
    func permanentErrorReported() throws {
        let cluster = try KafkaMockCluster(brokers: 1)
        let topic = TestBroker.uniqueName("permanent")
        try cluster.createTopic(topic, partitions: 1)
        let producer = try producer(cluster)
        _ = try sendAll(producer, [KafkaProducerRecord(topic: topic, value: [0])])
        cluster.failNextRequests(.produce, with: [.messageSizeTooLarge])
        let result = try sendAll(producer, [KafkaProducerRecord(topic: topic, value: [9])])[0]
        let error = try #require(result.failure, "expected the delivery to fail, got \(result)")
        #expect(error.errorCode == .messageSizeTooLarge)
        #expect(!error.isFatal)
        // The producer stays usable for the next message.
        let next = try sendAll(producer, [KafkaProducerRecord(topic: topic, value: [10])])[0].get()
        #expect(next.offset == KafkaOffset(1))
        try producer.close(timeout: .seconds(5))
        withExtendedLifetime(cluster) {}
    }

    @Test("broker down then up: every message is delivered, none lost or duplicated")
    func brokerDownThenUp() throws {
        let cluster = try KafkaMockCluster(brokers: 1)
        let topic = TestBroker.uniqueName("outage")
        try cluster.createTopic(topic, partitions: 2)
        let producer = try producer(cluster)
        let before = try sendAll(producer, (0..<10).map { KafkaProducerRecord(topic: topic, key: [UInt8($0)], value: [UInt8($0)]) })
        #expect(before.allSatisfy { (try? $0.get()) != nil })

        try cluster.setBrokerDown(1)
        let results = Locked([Int: Result<KafkaDelivery, KafkaError>]())
        for index in 10..<50 {
            try producer.send(KafkaProducerRecord(topic: topic, key: [UInt8(index)], value: [UInt8(index)])) { result in
                results.withLock { $0[index] = result }
            }
        }
        Thread.sleep(forTimeInterval: 1.5)
        #expect(results.withLock { $0.isEmpty }, "nothing can be acknowledged while the broker is down")
        try cluster.setBrokerUp(1)
        try producer.flush(timeout: .seconds(30))
        let delivered = results.withLock { $0 }
        #expect(delivered.count == 40)
        #expect(delivered.values.allSatisfy { (try? $0.get()) != nil }, "\(delivered.values.compactMap(\.failure))")
        try producer.close(timeout: .seconds(5))

        let messages = try consumeAll(cluster, topic: topic, count: 50)
        let values: [[UInt8]] = messages.map(\.value).sorted { $0[0] < $1[0] }
        let expected: [[UInt8]] = (0..<50).map { [UInt8($0)] }
        #expect(values == expected)
    }

    @Test("a fatal producer error fails outstanding messages with it, and send and flush throw instead of hanging")
    func fatalErrorFailsLoudly() throws {
        let cluster = try KafkaMockCluster(brokers: 1)
        let topic = TestBroker.uniqueName("fatal")
        try cluster.createTopic(topic, partitions: 1)
        let producer = try producer(cluster)
        _ = try sendAll(producer, [KafkaProducerRecord(topic: topic, value: [0])])
        try cluster.setBrokerDown(1)
        let results = Locked([Result<KafkaDelivery, KafkaError>]())
        for index in 0..<5 {
            try producer.send(KafkaProducerRecord(topic: topic, value: [UInt8(index)])) { result in results.withLock { $0.append(result) } }
        }
        producer.client.triggerFatalErrorForTesting(reason: "test: sequence desynchronised")
        let start = ContinuousClock.now
        #expect(throws: KafkaError.self) { try producer.flush(timeout: .seconds(10)) }
        while results.withLock({ $0.count }) < 5, ContinuousClock.now - start < .seconds(10) { Thread.sleep(forTimeInterval: 0.05) }
        let failures = results.withLock { $0 }.compactMap(\.failure)
        #expect(failures.count == 5)
        #expect(failures.allSatisfy { $0.isFatal && $0.message.contains("sequence desynchronised") }, "\(failures)")
        let error = #expect(throws: KafkaError.self) { try producer.send(KafkaProducerRecord(topic: topic, value: [1])) { _ in } }
        #expect(error?.isFatal == true)
        #expect(producer.fatalError?.isFatal == true)
        try? producer.close(timeout: .seconds(1))
        #expect(ContinuousClock.now - start < .seconds(10))
        withExtendedLifetime(cluster) {}
    }

    @Test("a producer released from inside its own delivery callback shuts down without waiting for itself")
    func releasedInsideCallback() throws {
        let cluster = try KafkaMockCluster(brokers: 1)
        let topic = TestBroker.uniqueName("release")
        try cluster.createTopic(topic, partitions: 1)
        let delivered = Locked<Result<KafkaDelivery, KafkaError>?>(nil)
        weak var client: RDKafkaClient?
        do {
            let producer = try producer(cluster)
            client = producer.client
            // The callback holds the last reference: the producer's deinit runs on its delivery thread.
            try producer.send(KafkaProducerRecord(topic: topic, value: [1])) { [producer] result in
                _ = producer.outstandingCount
                delivered.withLock { $0 = result }
            }
        }
        let deadline = Date().addingTimeInterval(20)
        while delivered.withLock({ $0 == nil }), Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        let result = try #require(delivered.withLock { $0 })
        #expect(try result.get().offset == KafkaOffset(0))
        // The deinit on the delivery thread completes and the librdkafka handle is destroyed.
        while client != nil, Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        #expect(client == nil, "the producer's handle was never destroyed: its delivery thread is stuck")
        withExtendedLifetime(cluster) {}
    }

    /// Ten messages per partition at base + 0 s, 1 s, … 9 s.
    private func timedTopic(_ cluster: KafkaMockCluster, partitions: Int32) throws -> (topic: String, base: Int64) {
        let topic = TestBroker.uniqueName("replay")
        try cluster.createTopic(topic, partitions: Int(partitions))
        let base: Int64 = 1_800_000_000_000
        let producer = try producer(cluster)
        var records: [KafkaProducerRecord] = []
        for partition in 0..<partitions {
            for second in 0..<10 {
                records.append(KafkaProducerRecord(
                    topic: topic, partition: KafkaPartition(partition), value: Array("p\(partition)-\(second)".utf8),
                    timestampMilliseconds: base + Int64(second) * 1000))
            }
        }
        for result in try sendAll(producer, records) { _ = try result.get() }
        try producer.close(timeout: .seconds(5))
        return (topic, base)
    }

    private func drain(_ replay: KafkaReplay) throws -> [KafkaMessage] {
        var messages: [KafkaMessage] = []
        let deadline = Date().addingTimeInterval(30)
        while !replay.isFinished, Date() < deadline {
            messages += try replay.poll(timeout: .milliseconds(100))
        }
        return messages
    }

    @Test("replay from a timestamp starts at the right offsets and stops at the end captured at start")
    func replayFromTimestamp() throws {
        let cluster = try KafkaMockCluster(brokers: 1)
        let (topic, base) = try timedTopic(cluster, partitions: 2)
        var configuration = KafkaReplayConfiguration(
            bootstrapServers: cluster.bootstrapServers, topic: topic, start: .timestamp(milliseconds: base + 4_500))
        configuration.properties = ["log_level": "3"]
        let replay = try KafkaReplay(configuration: configuration)
        #expect(replay.ranges.map(\.start) == [KafkaOffset(5), KafkaOffset(5)])
        #expect(replay.ranges.map(\.end) == [KafkaOffset(10), KafkaOffset(10)])

        // Written after the replay started: beyond its end, left to the live worker.
        let producer = try producer(cluster)
        _ = try sendAll(producer, (0..<2).map { KafkaProducerRecord(topic: topic, partition: KafkaPartition(Int32($0)), value: Array("late".utf8)) })
        try producer.close(timeout: .seconds(5))

        let messages = try drain(replay)
        #expect(replay.isFinished)
        for partition: Int32 in [0, 1] {
            let values = messages.filter { $0.partition == KafkaPartition(partition) }.map { String(decoding: $0.value, as: UTF8.self) }
            #expect(values == (5..<10).map { "p\(partition)-\($0)" })
        }
        #expect(try replay.poll(timeout: .milliseconds(10)).isEmpty, "a finished replay returns nothing")
        let progress = replay.progress
        #expect(progress.messages == 10 && progress.partitionsFinished == 2 && progress.fraction == 1)
        withExtendedLifetime(cluster) {}
    }

    @Test("replay from explicit offsets to an end timestamp covers exactly that range")
    func replayOffsetsToTimestamp() throws {
        let cluster = try KafkaMockCluster(brokers: 1)
        let (topic, base) = try timedTopic(cluster, partitions: 2)
        var configuration = KafkaReplayConfiguration(
            bootstrapServers: cluster.bootstrapServers, topic: topic,
            start: .offsets([KafkaPartition(1): KafkaOffset(2)]), end: .timestamp(milliseconds: base + 7_000))
        configuration.properties = ["log_level": "3"]
        let replay = try KafkaReplay(configuration: configuration)
        #expect(replay.ranges == [KafkaReplayRange(partition: KafkaPartition(1), start: KafkaOffset(2), end: KafkaOffset(7))])
        let messages = try drain(replay)
        #expect(replay.isFinished)
        #expect(messages.map(\.partition) == Array(repeating: KafkaPartition(1), count: 5))
        #expect(messages.map(\.offset.rawValue) == Array(2..<7))

        configuration.start = .offsets([KafkaPartition(5): KafkaOffset(0)])
        let error = #expect(throws: KafkaError.self) { try KafkaReplay(configuration: configuration) }
        #expect(error?.message.contains("partition 5 does not exist") == true)
        withExtendedLifetime(cluster) {}
    }
}

extension Result {
    var failure: Failure? { if case .failure(let error) = self { error } else { nil } }
}
