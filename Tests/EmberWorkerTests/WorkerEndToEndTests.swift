import EmberKafka
import EmberModel
import EmberPipeline
import Foundation
import Testing

/// `ember run` and `ember replay` end to end: real broker (tansu), real media made by
/// ffmpeg and espeak-ng, the real omni-small model. Serialized: each test keeps both
/// cores busy.
@Suite(
    "Worker end to end", .serialized,
    .enabled(if: WorkerHarness.isAvailable, "needs EMBER_TEST_BROKERS and the omni-small model (Ops/test provides both)"))
struct WorkerEndToEndTests {
    /// The dead-letter class each bad sample event must get (Ops/samples bad-events.jsonl, in order).
    static let badEventClasses = [
        "invalid_event", "invalid_event", "no_content", "forbidden_uri", "forbidden_uri", "media_unavailable", "media_invalid",
    ]

    private func itemIDs(_ samples: WorkerHarness.Samples) -> Set<String> {
        Set(samples.events.indices.map { "sample-\($0)" })
    }

    /// Checks every record: the right item, 2048 unit-norm dims, the modalities of a sample.
    private func checkRecords(_ records: [EmbeddingRecord], _ samples: WorkerHarness.Samples, input: String) {
        for record in records {
            #expect(record.dim == 2048)
            #expect(record.dtype == .float16)
            #expect(record.model.hasPrefix("omni-small@"))
            let vector = record.vector ?? []
            #expect(vector.count == 2048)
            let norm = vector.reduce(0) { $0 + $1 * $1 }.squareRoot()
            #expect(abs(norm - 1) < 2e-3, "\(record.itemID): norm \(norm)")
            // 4 s clips with a keyframe a second, plus the cover; titles of 3-6 words; 4 s of speech.
            #expect((4...9).contains(record.modalities.visionFrames), "\(record.itemID): \(record.modalities)")
            #expect(record.modalities.textTokens >= 5, "\(record.itemID): \(record.modalities)")
            #expect(abs(record.modalities.audioSeconds - 4) < 0.2, "\(record.itemID): \(record.modalities)")
            #expect(record.source?.topic == input)
            #expect(record.uploadedAt != nil)
        }
    }

    @Test("50 items and 7 bad events through ember run: one record each, dead letters classified, offsets committed to the end")
    func fiftyItems() throws {
        let samples = try WorkerHarness.samples()
        let topics = WorkerHarness.Topics("e2e-run")
        try WorkerHarness.createTopics(topics, partitions: 3)
        // Bad events first and last so a failing item never blocks the ones behind it.
        let events = samples.badEvents.prefix(3) + samples.events + samples.badEvents.dropFirst(3)
        try WorkerHarness.produce(Array(events), to: topics.input)

        let metricsPort = WorkerHarness.freePort()
        let worker = try WorkerProcess.run(
            group: topics.group, topics: topics, samples: samples, name: "w1",
            settings: ["metrics.prometheus_port=\(metricsPort)", "metrics.prometheus_host=127.0.0.1"])
        let outputs = try WorkerHarness.waitFor(topics.output, seconds: 240, while: worker) { $0.count >= samples.events.count }
        let deadLetters = try WorkerHarness.waitFor(topics.deadLetter, seconds: 30, while: worker) {
            $0.count >= samples.badEvents.count
        }
        // The same counts through the Prometheus endpoint (acknowledgements may trail the topic by a moment).
        var exposition = ""
        for _ in 0..<20 {
            exposition = try WorkerHarness.httpGet("http://127.0.0.1:\(metricsPort)/metrics")
            if exposition.contains("ember_items_out_total \(samples.events.count)") { break }
            Thread.sleep(forTimeInterval: 0.5)
        }
        #expect(exposition.contains("ember_items_out_total \(samples.events.count)"), "\(exposition.prefix(2000))")
        #expect(exposition.contains(#"ember_dead_letters_total{class="invalid_event"} 2"#))
        #expect(exposition.contains("ember_stage_duration_seconds_bucket"))
        #expect(worker.stop() == 0, "\(worker.logTail())")

        let records = try WorkerHarness.records(outputs)
        #expect(records.count == samples.events.count, "exactly one record per item")
        #expect(Set(records.map(\.itemID)) == itemIDs(samples))
        #expect(outputs.allSatisfy { $0.key.map { String(decoding: $0, as: UTF8.self) } != nil })
        #expect(zip(outputs, records).allSatisfy { String(decoding: $0.key ?? [], as: UTF8.self) == $1.itemID }, "key = item_id")
        checkRecords(records, samples, input: topics.input)

        #expect(deadLetters.count == samples.badEvents.count)
        let classes = deadLetters.map { String(decoding: $0.header("ember-error-class") ?? [], as: UTF8.self) }
        #expect(classes.sorted() == Self.badEventClasses.sorted())
        for letter in deadLetters {
            #expect(samples.badEvents.contains(String(decoding: letter.value, as: UTF8.self)), "dead letter keeps the original bytes")
            #expect(letter.header("ember-source-topic") == Array(topics.input.utf8))
            #expect(letter.header("ember-error-message").map { !$0.isEmpty } == true)
            #expect(letter.header("ember-attempts") == Array("1".utf8))
        }

        let input = try WorkerHarness.readAll(topics.input)
        let ends = WorkerHarness.endOffsets(input, partitions: 3)
        let committed = try WorkerHarness.committedOffsets(group: topics.group, topic: topics.input, partitions: 3)
        #expect(committed == ends.map { Optional($0) }, "committed offsets reach the end of every partition")
        #expect(worker.log.contains("pipeline stopped"))
        #expect(worker.log.contains("items_out=\(samples.events.count)"))
    }

    @Test("kill -9 mid-stream, restart: every item gets a record, duplicates only from the in-flight window")
    func killAndRestart() throws {
        let samples = try WorkerHarness.samples()
        let topics = WorkerHarness.Topics("e2e-kill")
        try WorkerHarness.createTopics(topics, partitions: 3)
        try WorkerHarness.produce(samples.events, to: topics.input)

        let first = try WorkerProcess.run(group: topics.group, topics: topics, samples: samples, name: "first")
        // Kill early: at ~8 items/s the rest of the 50 take several seconds more.
        let before = try WorkerHarness.waitFor(topics.output, seconds: 240, while: first) { $0.count >= 5 }
        first.kill()
        #expect(before.count >= 5 && before.count < samples.events.count, "killed mid-stream after \(before.count) records")

        let second = try WorkerProcess.run(group: topics.group, topics: topics, samples: samples, name: "second")
        let outputs = try WorkerHarness.waitFor(topics.output, seconds: 240, while: second) {
            WorkerHarness.itemIDs($0).count >= samples.events.count
        }
        #expect(second.stop() == 0, "\(second.logTail())")
        let records = try WorkerHarness.records(outputs)
        #expect(Set(records.map(\.itemID)) == itemIDs(samples), "nothing lost")
        // pipeline.max_in_flight (64) bounds what a kill can leave unacknowledged.
        let duplicates = records.count - Set(records.map(\.itemID)).count
        #expect(duplicates <= 64, "\(duplicates) duplicates")
        checkRecords(records, samples, input: topics.input)
    }

    @Test("two workers in one group share the partitions; stopping one moves its partitions to the other, nothing lost")
    func twoWorkers() throws {
        let samples = try WorkerHarness.samples()
        let topics = WorkerHarness.Topics("e2e-pair")
        try WorkerHarness.createTopics(topics, partitions: 4)
        try WorkerHarness.produce(samples.events, to: topics.input)

        // A small in-flight window, so a leaves work behind on its partitions for b.
        let window = ["pipeline.max_in_flight=4", "pipeline.resume_below=2"]
        let a = try WorkerProcess.run(group: topics.group, topics: topics, samples: samples, name: "a", settings: window)
        let b = try WorkerProcess.run(group: topics.group, topics: topics, samples: samples, name: "b", settings: window)
        #expect(a.waitForLog(seconds: 60) { !Self.assignedPartitions($0).isEmpty }, "a was assigned partitions")
        #expect(b.waitForLog(seconds: 60) { !Self.assignedPartitions($0).isEmpty }, "b was assigned partitions")
        let early = try WorkerHarness.waitFor(topics.output, seconds: 240, while: a) { $0.count >= 5 }
        #expect(early.count >= 5 && early.count < samples.events.count)
        #expect(a.stop() == 0, "\(a.logTail())")
        let aPartitions = Self.assignedPartitions(a.log)
        #expect(
            b.waitForLog(seconds: 60) { aPartitions.isSubset(of: Self.assignedPartitions($0)) },
            "a's partitions \(aPartitions) move to b: \(Self.assignedPartitions(b.log))")
        let outputs = try WorkerHarness.waitFor(topics.output, seconds: 240, while: b) {
            WorkerHarness.itemIDs($0).count >= samples.events.count
        }
        #expect(b.stop() == 0, "\(b.logTail())")

        let records = try WorkerHarness.records(outputs)
        #expect(Set(records.map(\.itemID)) == itemIDs(samples), "nothing lost")
        checkRecords(records, samples, input: topics.input)
    }

    @Test("ember replay of the input reproduces the live run's vectors byte for byte, and stops by itself")
    func replayIsByteIdentical() throws {
        let samples = try WorkerHarness.samples()
        let topics = WorkerHarness.Topics("e2e-replay")
        try WorkerHarness.createTopics(topics, partitions: 3)
        let events = Array(samples.events.prefix(20))
        try WorkerHarness.produce(events, to: topics.input)

        let live = try WorkerProcess.run(group: topics.group, topics: topics, samples: samples, name: "live")
        let liveOutputs = try WorkerHarness.waitFor(topics.output, seconds: 240, while: live) { $0.count >= events.count }
        #expect(live.stop() == 0)

        let replayTopics = WorkerHarness.Topics("e2e-replayed")
        let admin = try KafkaAdmin(bootstrapServers: WorkerHarness.brokers!)
        try admin.ensureTopics([KafkaTopicSpec(name: replayTopics.output, partitions: 3), KafkaTopicSpec(name: replayTopics.deadLetter, partitions: 1)])
        let replay = try WorkerProcess(
            ["replay", "--from-offsets", "0:0,1:0,2:0"],
            topics: WorkerHarness.Topics(input: topics.input, output: replayTopics.output, deadLetter: replayTopics.deadLetter, group: replayTopics.group),
            samples: samples, name: "replay")
        #expect(replay.wait() == 0, "replay stops by itself: \(replay.logTail())")
        #expect(replay.log.contains("replay finished"))

        let liveVectors = Dictionary(uniqueKeysWithValues: try WorkerHarness.records(liveOutputs).map { ($0.itemID, $0.embedding) })
        let replayed = try WorkerHarness.records(try WorkerHarness.readAll(replayTopics.output))
        #expect(replayed.count == events.count)
        for record in replayed {
            #expect(record.embedding == liveVectors[record.itemID], "\(record.itemID) differs between live run and replay")
        }
    }

    @Test("a transient media failure is retried with backoff, then dead-lettered as media_unavailable; other items go on")
    func transientFailuresAreRetried() throws {
        let samples = try WorkerHarness.samples()
        let topics = WorkerHarness.Topics("e2e-retry")
        try WorkerHarness.createTopics(topics, partitions: 1)
        // A port nothing listens on: connection refused, which a retry may fix.
        let port = WorkerHarness.freePort()
        let unreachable = #"{"item_id":"unreachable","video_uri":"http://127.0.0.1:\#(port)/v.mp4","title":"x"}"#
        try WorkerHarness.produce([unreachable, samples.events[0]], to: topics.input)

        let worker = try WorkerProcess(
            ["run", "--group-id", topics.group, "--set", "media.block_private_addresses=false",
             "--set", "pipeline.max_attempts=3", "--set", "pipeline.retry_backoff_ms=200"],
            topics: topics, samples: samples, name: "retry")
        let deadLetters = try WorkerHarness.waitFor(topics.deadLetter, seconds: 120, while: worker) { $0.count >= 1 }
        let outputs = try WorkerHarness.waitFor(topics.output, seconds: 120, while: worker) { $0.count >= 1 }
        #expect(worker.stop() == 0)
        #expect(try WorkerHarness.records(outputs).map(\.itemID) == ["sample-0"], "the item behind the failing one is embedded")
        let letter = try #require(deadLetters.first)
        #expect(letter.header("ember-error-class") == Array("media_unavailable".utf8))
        #expect(letter.header("ember-attempts") == Array("3".utf8), "tried max_attempts times")
        #expect(worker.log.contains("retries=2"), "two retries counted in the metrics")
    }

    /// Partitions a worker's log reports as assigned.
    static func assignedPartitions(_ log: String) -> Set<String> {
        var partitions = Set<String>()
        for line in log.split(separator: "\n") where line.contains("assigned") {
            for match in line.matches(of: /\[(\d+)\]/) { partitions.insert(String(match.1)) }
        }
        return partitions
    }
}

extension WorkerHarness.Topics {
    init(input: String, output: String, deadLetter: String, group: String) {
        self.input = input
        self.output = output
        self.deadLetter = deadLetter
        self.group = group
    }
}
