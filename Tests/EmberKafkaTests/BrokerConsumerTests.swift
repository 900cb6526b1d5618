import Foundation
import Testing
@testable import EmberKafka

/// Consumer-group behaviour against the real broker (tansu).
@Suite("Kafka consumer on tansu", .enabled(if: TestBroker.isAvailable, "set EMBER_TEST_BROKERS (Ops/test does)"), .timeLimit(.minutes(3)))
struct BrokerConsumerTests {
    let bootstrap = TestBroker.bootstrapServers ?? ""

    private func makeTopic(_ prefix: String, partitions: Int) throws -> String {
        let topic = TestBroker.uniqueName(prefix)
        try KafkaAdmin(bootstrapServers: bootstrap, properties: ["log_level": "3"])
            .ensureTopics([KafkaTopicSpec(name: topic, partitions: partitions)])
        return topic
    }

    private func produce(_ topic: String, count: Int, partition: Int32? = nil) throws -> [KafkaDelivery] {
        let producer = try KafkaProducer(configuration: TestBroker.producerConfiguration(bootstrap: bootstrap))
        let records = (0..<count).map { index in
            KafkaProducerRecord(
                topic: topic, partition: partition.map { KafkaPartition($0) }, key: Array("key-\(index)".utf8),
                value: Array("value-\(index)".utf8), headers: [KafkaHeader(key: "index", string: String(index))])
        }
        let deliveries = try sendAll(producer, records).map { try $0.get() }
        try producer.close(timeout: .seconds(5))
        return deliveries
    }

    @Test("ensureTopics creates a topic with its partitions, is idempotent, and refuses too few partitions")
    func ensureTopics() throws {
        let admin = try KafkaAdmin(bootstrapServers: bootstrap, properties: ["log_level": "3"])
        let topic = TestBroker.uniqueName("admin")
        try admin.ensureTopics([KafkaTopicSpec(name: topic, partitions: 3)])
        #expect(try admin.partitionCounts()[topic] == 3)
        try admin.ensureTopics([KafkaTopicSpec(name: topic, partitions: 2)])
        let error = #expect(throws: KafkaError.self) { try admin.ensureTopics([KafkaTopicSpec(name: topic, partitions: 5)]) }
        #expect(error?.message.contains("has 3 partition(s), 5 required") == true)
        #expect(throws: KafkaError.self) { try admin.ensureTopics([KafkaTopicSpec(name: "x", partitions: 0)]) }
    }

    @Test("keys, values and headers round-trip; a dead letter keeps the original bytes")
    func roundTripWithDeadLetter() throws {
        let topic = try makeTopic("roundtrip", partitions: 2)
        let dlq = try makeTopic("roundtrip-dlq", partitions: 1)
        let deliveries = try produce(topic, count: 10)
        #expect(Set(deliveries.map(\.partition)).isSubset(of: [KafkaPartition(0), KafkaPartition(1)]))

        let consumer = try KafkaConsumer(configuration: TestBroker.consumerConfiguration(bootstrap: bootstrap, group: TestBroker.uniqueName("rt"), topics: [topic]))
        let messages = try pollEvents(consumer, seconds: 60) { $0.messages.count >= 10 }.messages
        #expect(messages.count == 10)
        for message in messages {
            let index = try #require(message.header("index").map { String(decoding: $0, as: UTF8.self) })
            #expect(message.key == Array("key-\(index)".utf8))
            #expect(message.value == Array("value-\(index)".utf8))
            let delivery = try #require(deliveries[Int(index)!] as KafkaDelivery?)
            #expect(message.partition == delivery.partition && message.offset == delivery.offset)
        }

        // A failed message goes to the dead-letter topic unchanged, with the reason.
        let failed = try #require(messages.first)
        let producer = try KafkaProducer(configuration: TestBroker.producerConfiguration(bootstrap: bootstrap))
        let record = KafkaDeadLetter.record(for: failed, topic: dlq, errorClass: "invalid_event", errorMessage: "item_id missing", attempts: 1)
        _ = try sendAll(producer, [record])[0].get()
        try producer.close(timeout: .seconds(5))
        #expect(consumer.markDone(failed))
        try consumer.close()

        let reader = try KafkaConsumer(configuration: TestBroker.consumerConfiguration(bootstrap: bootstrap, group: TestBroker.uniqueName("rt-dlq"), topics: [dlq]))
        let dead = try #require(try pollEvents(reader, seconds: 60) { !$0.messages.isEmpty }.messages.first)
        #expect(dead.value == failed.value)
        #expect(dead.key == failed.key)
        #expect(dead.header("index") == failed.header("index"))
        #expect(dead.header(KafkaDeadLetter.errorClassHeader) == Array("invalid_event".utf8))
        #expect(dead.header(KafkaDeadLetter.errorMessageHeader) == Array("item_id missing".utf8))
        #expect(dead.header(KafkaDeadLetter.sourceTopicHeader) == Array(topic.utf8))
        #expect(dead.header(KafkaDeadLetter.sourcePartitionHeader) == Array(String(failed.partition.rawValue).utf8))
        #expect(dead.header(KafkaDeadLetter.sourceOffsetHeader) == Array(String(failed.offset.rawValue).utf8))
        #expect(dead.header(KafkaDeadLetter.attemptsHeader) == Array("1".utf8))
        try reader.close()
    }

    @Test("out-of-order completion commits only the contiguous watermark")
    func contiguousWatermark() throws {
        let topic = try makeTopic("watermark", partitions: 1)
        _ = try produce(topic, count: 6)
        let consumer = try KafkaConsumer(configuration: TestBroker.consumerConfiguration(bootstrap: bootstrap, group: TestBroker.uniqueName("wm"), topics: [topic]))
        let messages = try pollEvents(consumer, seconds: 60) { $0.messages.count >= 6 }.messages
        #expect(messages.map(\.offset.rawValue) == Array(0...5))
        let partition = KafkaTopicPartition(topic: topic, partition: KafkaPartition(0))

        for offset: Int64 in [0, 1, 3] { #expect(consumer.markDone(partition, offset: KafkaOffset(offset))) }
        try consumer.commit()
        #expect(try consumer.committedOffsets()[partition] == KafkaOffset(2))
        let lag = try #require(consumer.lag().first)
        #expect(lag.highWatermark == KafkaOffset(6))
        #expect(lag.committable == KafkaOffset(2))
        #expect(lag.inFlight == 3)
        #expect(lag.lag == 4)

        #expect(consumer.markDone(partition, offset: KafkaOffset(2)))
        try consumer.commit()
        #expect(try consumer.committedOffsets()[partition] == KafkaOffset(4))
        try consumer.close()
    }

    @Test("a restarted member resumes from the committed offsets with nothing lost")
    func restartResumes() throws {
        let topic = try makeTopic("restart", partitions: 2)
        let deliveries = try produce(topic, count: 20)
        let group = TestBroker.uniqueName("restart")

        // First run: finish everything except one message of partition 0, then stop.
        let first = try KafkaConsumer(configuration: TestBroker.consumerConfiguration(bootstrap: bootstrap, group: group, topics: [topic]))
        let seen = try pollEvents(first, seconds: 60) { $0.messages.count >= 20 }.messages
        #expect(seen.count == 20)
        let held = try #require(seen.first { $0.partition == KafkaPartition(0) && $0.offset.rawValue > 0 })
        var finished: [KafkaMessage] = []
        for message in seen where message != held {
            #expect(first.markDone(message))
            finished.append(message)
        }
        try first.close()

        // Second run: starts at the held message on partition 0 and after everything on partition 1.
        let second = try KafkaConsumer(configuration: TestBroker.consumerConfiguration(bootstrap: bootstrap, group: group, topics: [topic]))
        let redelivered = try pollEvents(second, seconds: 60) { events in
            events.messages.contains { $0.offset == held.offset && $0.partition == held.partition }
        }.messages
        let partition0 = redelivered.filter { $0.partition == KafkaPartition(0) }
        #expect(partition0.first?.offset == held.offset, "partition 0 restarts at the unfinished message")
        #expect(redelivered.allSatisfy { $0.partition == KafkaPartition(0) }, "partition 1 was fully committed")
        let union = Set(finished.map(\.value)).union(redelivered.map(\.value))
        #expect(union == Set(deliveries.indices.map { Array("value-\($0)".utf8) }), "no message lost")
        try second.close()
    }

    @Test("after a restart, an idle partition holding only processed records is not backlogged; the busy one is")
    func idlePartitionNotBacklogged() throws {
        let topic = try makeTopic("idle", partitions: 2)
        let group = TestBroker.uniqueName("idle")
        _ = try produce(topic, count: 10, partition: 1)

        // First run: everything on partition 1 is processed and committed.
        let first = try KafkaConsumer(configuration: TestBroker.consumerConfiguration(bootstrap: bootstrap, group: group, topics: [topic]))
        let seen = try pollEvents(first, seconds: 60) { $0.messages.count >= 10 }.messages
        #expect(seen.count == 10)
        for message in seen { #expect(first.markDone(message)) }
        try first.close()

        // New records arrive on partition 0 only; the restarted member reads a few of them.
        _ = try produce(topic, count: 30, partition: 0)
        var configuration = TestBroker.consumerConfiguration(bootstrap: bootstrap, group: group, topics: [topic])
        configuration.maxMessagesPerPoll = 2
        let second = try KafkaConsumer(configuration: configuration)
        let read = try pollEvents(second, seconds: 60) { !$0.messages.isEmpty }.messages
        #expect(!read.isEmpty && read.allSatisfy { $0.partition == KafkaPartition(0) }, "\(read.map(\.topicPartition))")
        // Partition 1 holds 10 retained records but none to process: it must not count,
        // or the fair share would cap partition 0 for as long as partition 1 stays idle.
        // (Not polling meanwhile: partition 0 keeps its backlog; fetch responses still
        // refresh the watermarks on librdkafka's threads.)
        var backlogged = second.backloggedPartitions()
        let deadline = Date().addingTimeInterval(30)
        while backlogged != partitions(topic, 0) && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.1)
            backlogged = second.backloggedPartitions()
        }
        #expect(backlogged == partitions(topic, 0), "backlogged: \(backlogged.sorted())")
        try second.close()
    }

    @Test("two members split the partitions; a leaving member's partitions move to the other")
    func groupRebalance() throws {
        let topic = try makeTopic("group", partitions: 4)
        _ = try produce(topic, count: 40)
        let group = TestBroker.uniqueName("group")
        let a = try KafkaConsumer(configuration: TestBroker.consumerConfiguration(bootstrap: bootstrap, group: group, topics: [topic]))
        // a takes everything and finishes nothing yet.
        let inFlight = try pollEvents(a, seconds: 60) { $0.messages.count >= 40 }.messages
        #expect(a.assignment.count == 4)
        #expect(inFlight.count == 40)

        let b = try KafkaConsumer(configuration: TestBroker.consumerConfiguration(bootstrap: bootstrap, group: group, topics: [topic]))
        var aEvents: [KafkaConsumerEvent] = []
        var bEvents: [KafkaConsumerEvent] = []
        let deadline = Date().addingTimeInterval(40)
        while Date() < deadline, !(a.assignment.count == 2 && b.assignment.count == 2) {
            aEvents += try a.poll(timeout: .milliseconds(50))
            bEvents += try b.poll(timeout: .milliseconds(50))
        }
        #expect(a.assignment.count == 2 && b.assignment.count == 2, "a: \(a.assignment), b: \(b.assignment)")
        #expect(Set(a.assignment).isDisjoint(with: b.assignment))
        #expect(Set(a.assignment + b.assignment) == partitions(topic, 0, 1, 2, 3))
        let revokedFromA: [KafkaTopicPartition] = aEvents.flatMap { event -> [KafkaTopicPartition] in if case .revoked(let list) = event { list } else { [] } }
        #expect(Set(revokedFromA) == Set(b.assignment), "cooperative: a gives up exactly what b gets")
        #expect(!aEvents.contains { if case .lost = $0 { true } else { false } })
        // Results for revoked partitions are refused; kept ones still count.
        for message in inFlight {
            #expect(a.markDone(message) == a.assignment.contains(message.topicPartition))
        }
        // b starts its partitions from the beginning: nothing of them was committed.
        let bMessages = try pollEvents(b, seconds: 20) { $0.messages.count + bEvents.messages.count >= 20 }.messages + bEvents.messages
        #expect(bMessages.count == 20)
        for partition in b.assignment {
            #expect(bMessages.filter { $0.topicPartition == partition }.map(\.offset.rawValue).min() == 0)
        }

        let bPartitions = b.assignment
        try b.close()
        try pollEvents(a, seconds: 60) { _ in a.assignment.count == 4 }
        #expect(Set(a.assignment) == partitions(topic, 0, 1, 2, 3))
        #expect(Set(bPartitions).isSubset(of: a.assignment))
        try a.close()
    }

    @Test("pausing stops delivery but keeps the member in the group; resuming continues")
    func pauseResume() throws {
        let topic = try makeTopic("pause", partitions: 1)
        _ = try produce(topic, count: 5)
        let consumer = try KafkaConsumer(configuration: TestBroker.consumerConfiguration(bootstrap: bootstrap, group: TestBroker.uniqueName("pause"), topics: [topic]))
        consumer.pauseAll()  // before assignment: the partition arrives paused
        let whilePaused = try pollEvents(consumer, seconds: 8) { _ in false }
        #expect(consumer.isPaused)
        #expect(consumer.assignment.count == 1, "still a member while paused")
        #expect(whilePaused.messages.isEmpty)
        consumer.resumeAll()
        let messages = try pollEvents(consumer, seconds: 20) { $0.messages.count >= 5 }.messages
        #expect(messages.map(\.offset.rawValue) == Array(0...4))
        try consumer.close()
    }

    @Test("replay on tansu: a timestamp start and the end captured at start hold despite its ListOffsets gaps")
    func replayOnTansu() throws {
        let topic = try makeTopic("replay", partitions: 1)
        let base: Int64 = 1_800_000_000_000
        let producer = try KafkaProducer(configuration: TestBroker.producerConfiguration(bootstrap: bootstrap))
        // Two batches, so a high watermark that lags by the last batch would show.
        for batch in 0..<2 {
            let records = (0..<5).map { index in
                KafkaProducerRecord(topic: topic, value: Array("m\(batch * 5 + index)".utf8), timestampMilliseconds: base + Int64(batch * 5 + index) * 1000)
            }
            for result in try sendAll(producer, records) { _ = try result.get() }
        }
        var configuration = KafkaReplayConfiguration(bootstrapServers: bootstrap, topic: topic, start: .timestamp(milliseconds: base + 2_500))
        configuration.properties = ["log_level": "3"]
        // tansu answers offsetsForTimes with 0 and ListOffsets LATEST with 6 here; the
        // checks against message timestamps and the Fetch high watermark correct both.
        let replay = try KafkaReplay(configuration: configuration)
        #expect(replay.ranges == [KafkaReplayRange(partition: KafkaPartition(0), start: KafkaOffset(3), end: KafkaOffset(10))])
        _ = try sendAll(producer, [KafkaProducerRecord(topic: topic, value: Array("late".utf8))])
        try producer.close(timeout: .seconds(5))

        var messages: [KafkaMessage] = []
        let deadline = Date().addingTimeInterval(30)
        while !replay.isFinished, Date() < deadline { messages += try replay.poll(timeout: .milliseconds(100)) }
        #expect(replay.isFinished)
        #expect(messages.map { String(decoding: $0.value, as: UTF8.self) } == (3..<10).map { "m\($0)" })
        #expect(replay.progress.fraction == 1)
    }

    @Test("a member that stops polling past max.poll.interval loses its partitions and commits nothing for them")
    func lostPartitions() throws {
        let topic = try makeTopic("lost", partitions: 1)
        _ = try produce(topic, count: 3)
        var configuration = TestBroker.consumerConfiguration(bootstrap: bootstrap, group: TestBroker.uniqueName("lost"), topics: [topic])
        configuration.maxPollInterval = .milliseconds(6000)
        let consumer = try KafkaConsumer(configuration: configuration)
        let messages = try pollEvents(consumer, seconds: 60) { $0.messages.count >= 3 }.messages
        #expect(messages.count == 3)
        #expect(consumer.markDone(messages[0]))

        Thread.sleep(forTimeInterval: 7.5)  // a stuck worker: librdkafka leaves the group
        let events = try pollEvents(consumer, seconds: 20) { events in
            events.contains { if case .lost = $0 { true } else { false } }
        }
        let partition = KafkaTopicPartition(topic: topic, partition: KafkaPartition(0))
        #expect(events.contains(.lost([partition])), "\(events)")
        #expect(!consumer.markDone(messages[1]), "in-flight work of a lost partition is refused")
        #expect(try consumer.committedOffsets(for: [partition])[partition] == .some(nil), "nothing was committed")
        try consumer.close()
    }

    @Test("a partition paused, lost and reassigned after a resume is fetched again (librdkafka keeps the pause flag across unassign/assign)")
    func pausedLostReassignedIsFetched() throws {
        let topic = try makeTopic("paused-lost", partitions: 1)
        _ = try produce(topic, count: 3)
        var configuration = TestBroker.consumerConfiguration(bootstrap: bootstrap, group: TestBroker.uniqueName("paused-lost"), topics: [topic])
        configuration.maxPollInterval = .milliseconds(6000)
        let consumer = try KafkaConsumer(configuration: configuration)
        let first = try pollEvents(consumer, seconds: 60) { $0.messages.count >= 3 }.messages
        #expect(first.count == 3)
        for message in first { consumer.markDone(message) }
        consumer.pauseAll()  // the pipeline's window is full

        Thread.sleep(forTimeInterval: 7.5)  // stuck past max.poll.interval: the partition is lost
        let lost = try pollEvents(consumer, seconds: 20) { events in events.contains { if case .lost = $0 { true } else { false } } }
        #expect(lost.contains { if case .lost = $0 { true } else { false } }, "\(lost)")
        // Losing the partition released the window, so the pipeline resumes: nothing is
        // assigned at this moment.
        consumer.resumeAll()
        let reassigned = try pollEvents(consumer, seconds: 40) { _ in consumer.assignment.count == 1 }
        #expect(consumer.assignment.count == 1, "\(reassigned)")
        _ = try produce(topic, count: 3)
        let after = try pollEvents(consumer, seconds: 20) { $0.messages.count >= 3 }.messages
        #expect(after.count >= 3, "the reassigned partition is fetched again: \(after.count) messages")
        try consumer.close()
    }

    @Test("the commit on revoke is not undone by librdkafka's commit of an older stored offset: committed offsets never move backwards")
    func revokeCommitNotUndone() throws {
        let topic = try makeTopic("revoke-commit", partitions: 4)
        _ = try produce(topic, count: 40)
        let group = TestBroker.uniqueName("revoke-commit")
        let a = try KafkaConsumer(configuration: TestBroker.consumerConfiguration(bootstrap: bootstrap, group: group, topics: [topic]))
        let inFlight = try pollEvents(a, seconds: 60) { $0.messages.count >= 40 }.messages
        #expect(inFlight.count == 40)
        // Half of each partition is done and stored (poll stores) and committed.
        let (early, late) = (inFlight.filter { $0.offset.rawValue < 5 }, inFlight.filter { $0.offset.rawValue >= 5 })
        for message in early { a.markDone(message) }
        try a.commit()
        let committedEarly = try a.committedOffsets()
        #expect(committedEarly.values.allSatisfy { $0 == KafkaOffset(5) }, "\(committedEarly)")

        // A long poll on another thread stores nothing new; while it waits, the rest
        // is finished and a second member joins, so the revoke's commit (all done)
        // is newer than librdkafka's stored offsets (half).
        let aEvents = Locked([KafkaConsumerEvent]())
        let aDone = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            let deadline = Date().addingTimeInterval(40)
            while Date() < deadline {
                let events = (try? a.poll(timeout: .seconds(8))) ?? []
                aEvents.withLock { $0 += events }
                if events.contains(where: { if case .revoked = $0 { true } else { false } }) { break }
            }
            aDone.signal()
        }
        Thread.sleep(forTimeInterval: 0.5)
        for message in late { a.markDone(message) }
        let b = try KafkaConsumer(configuration: TestBroker.consumerConfiguration(bootstrap: bootstrap, group: group, topics: [topic]))
        let deadline = Date().addingTimeInterval(40)
        while Date() < deadline, aEvents.withLock({ events in !events.contains { if case .revoked = $0 { true } else { false } } }) {
            _ = try b.poll(timeout: .milliseconds(50))
        }
        aDone.wait()
        let revoked = aEvents.withLock { $0 }.flatMap { event -> [KafkaTopicPartition] in if case .revoked(let list) = event { list } else { [] } }
        #expect(!revoked.isEmpty, "a second member takes partitions from the first")
        Thread.sleep(forTimeInterval: 1)  // librdkafka's own commit during unassign has landed
        let committed = try b.committedOffsets(for: revoked)
        for partition in revoked {
            let end = KafkaOffset(inFlight.filter { $0.topicPartition == partition }.map(\.offset.rawValue).max()! + 1)
            #expect(committed[partition] == .some(end), "\(partition): committed \(String(describing: committed[partition])) after the revoke committed \(end)")
        }
        try b.close()
        try a.close()
    }
}
