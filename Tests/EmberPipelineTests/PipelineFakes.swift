import EmberKafka
import Foundation
@testable import EmberPipeline

// Test doubles for the pipeline's three seams (input, output, processor), so its
// delivery logic (revoke, drain deadline, retry, resend, permanent and fatal
// failures) is tested without the model or a broker's timing. The real parts are
// tested end to end in EmberWorkerTests.

/// Pipeline settings for the fakes: topics `out` and `dlq`, no metrics lines, no wait
/// for fuller batches, retries after 10–50 ms; `change` adjusts the rest.
func fakeConfiguration(_ change: (inout PipelineConfiguration) -> Void = { _ in }) -> PipelineConfiguration {
    var configuration = PipelineConfiguration()
    configuration.outputTopic = "out"
    configuration.deadLetterTopic = "dlq"
    configuration.metricsIntervalSeconds = 0
    configuration.maxBatchWaitSeconds = 0
    configuration.retryBackoffSeconds = 0.01
    configuration.maxRetryBackoffSeconds = 0.05
    change(&configuration)
    return configuration
}

/// One input message of the fake topic `in`.
func fakeMessage(partition: Int32 = 0, offset: Int64, itemID: String, title: String = "a title") -> KafkaMessage {
    let event = #"{"item_id":"\#(itemID)","title":"\#(title)"}"#
    return KafkaMessage(
        topic: "in", partition: KafkaPartition(partition), offset: KafkaOffset(offset), key: Array(itemID.utf8),
        value: Array(event.utf8))
}

func fakePartition(_ number: Int32) -> KafkaTopicPartition {
    KafkaTopicPartition(topic: "in", partition: KafkaPartition(number))
}

/// A scripted input: hands out queued events a few per poll, records what the pipeline
/// marks done, pauses and closes. Bounded: exhausted once its script is empty and
/// `endWhenEmpty` is set; otherwise it behaves like a live consumer.
final class FakeInput: PipelineInput, @unchecked Sendable {
    private let lock = NSLock()
    private var script: [KafkaConsumerEvent] = []
    private var doneOffsets: [KafkaTopicPartition: [Int64]] = [:]
    private var pausedNow = false
    private var heldNow: Set<KafkaTopicPartition> = []
    private var closedNow = false
    private var pauses = 0
    let endWhenEmpty: Bool

    init(_ events: [KafkaConsumerEvent] = [], endWhenEmpty: Bool = false) {
        script = events
        self.endWhenEmpty = endWhenEmpty
    }

    func push(_ events: [KafkaConsumerEvent]) { lock.withLock { script += events } }

    func poll(timeout: Duration) throws(KafkaError) -> [KafkaConsumerEvent] {
        let events: [KafkaConsumerEvent] = lock.withLock {
            guard !closedNow else { return [] }
            // While paused only rebalance events come through, as from librdkafka; a
            // held-back partition's messages wait while the others' pass them.
            var taken: [KafkaConsumerEvent] = []
            var index = 0
            while index < script.count, taken.count < 4 {
                if case .message(let message) = script[index] {
                    if pausedNow { break }
                    if heldNow.contains(message.topicPartition) {
                        index += 1
                        continue
                    }
                }
                taken.append(script.remove(at: index))
            }
            return taken
        }
        if events.isEmpty { Thread.sleep(forTimeInterval: 0.005) }
        return events
    }

    func pauseAll() { lock.withLock { if !pausedNow { pauses += 1 }; pausedNow = true } }
    func resumeAll() { lock.withLock { pausedNow = false } }
    func holdBack(_ partitions: Set<KafkaTopicPartition>) { lock.withLock { heldNow = partitions } }

    func backloggedPartitions() -> Set<KafkaTopicPartition> {
        lock.withLock {
            Set(script.compactMap { event in
                if case .message(let message) = event { message.topicPartition } else { nil }
            })
        }
    }

    @discardableResult
    func markDone(_ partition: KafkaTopicPartition, offset: KafkaOffset) -> Bool {
        lock.withLock { doneOffsets[partition, default: []].append(offset.rawValue) }
        return true
    }

    func close() throws(KafkaError) { lock.withLock { closedNow = true } }
    var isExhausted: Bool { lock.withLock { endWhenEmpty && script.isEmpty } }
    func totalLag() -> Int64? { nil }

    func done(_ partition: KafkaTopicPartition) -> [Int64] { lock.withLock { doneOffsets[partition] ?? [] } }
    var allDone: Set<Int64> { lock.withLock { Set(doneOffsets.values.joined()) } }
    var isClosed: Bool { lock.withLock { closedNow } }
    var pauseCount: Int { lock.withLock { pauses } }
}

/// An output that acknowledges on its own queue after `latency`, or fails as `decide`
/// says for a record and its attempt number (1 for the first send of that record).
final class FakeOutput: PipelineOutput, @unchecked Sendable {
    enum Outcome: Sendable {
        case deliver
        case fail(KafkaError)
        /// `send` throws at once (librdkafka refused to enqueue it).
        case refuseToEnqueue(KafkaError)
    }

    private let lock = NSLock()
    private let queue = DispatchQueue(label: "fake-output")
    private let latency: Double
    private let decide: @Sendable (KafkaProducerRecord, Int) -> Outcome
    private var attempts: [String: Int] = [:]
    private var delivered: [KafkaProducerRecord] = []
    private var sends = 0
    private let outstanding = DispatchGroup()

    init(latency: Double = 0.001, decide: @escaping @Sendable (KafkaProducerRecord, Int) -> Outcome = { _, _ in .deliver }) {
        self.latency = latency
        self.decide = decide
    }

    func send(
        _ record: KafkaProducerRecord, onDelivery: @escaping @Sendable (Result<KafkaDelivery, KafkaError>) -> Void
    ) throws(KafkaError) {
        let identity = "\(record.topic)|\(record.key.map { String(decoding: $0, as: UTF8.self) } ?? "")|\(record.value.count)"
        let attempt = lock.withLock {
            sends += 1
            attempts[identity, default: 0] += 1
            return attempts[identity]!
        }
        let outcome = decide(record, attempt)
        if case .refuseToEnqueue(let error) = outcome { throw error }
        outstanding.enter()
        queue.asyncAfter(deadline: .now() + latency) { [self] in
            switch outcome {
            case .deliver:
                let offset = lock.withLock {
                    delivered.append(record)
                    return delivered.count - 1
                }
                onDelivery(.success(KafkaDelivery(topic: record.topic, partition: KafkaPartition(0), offset: KafkaOffset(Int64(offset)))))
            case .fail(let error), .refuseToEnqueue(let error):
                onDelivery(.failure(error))
            }
            outstanding.leave()
        }
    }

    func flush(timeout: Duration) throws(KafkaError) {
        _ = outstanding.wait(timeout: .now() + Double(timeout.components.seconds))
    }

    func records(on topic: String) -> [KafkaProducerRecord] { lock.withLock { delivered.filter { $0.topic == topic } } }
    var sendCount: Int { lock.withLock { sends } }
}

/// A processor whose behaviour is written in the item id: `transient<N>-…` fails with a
/// transient fetch error N times, `permanent-…` fails for good, anything else succeeds.
/// `prepareDelay` makes each prepare take that long; `gate` holds prepares until opened.
final class FakeProcessor: ItemProcessor, @unchecked Sendable {
    struct Prepared: Sendable { var itemID: String }

    let modelID = "fake@0"
    let embedsOneByOne: Bool
    let embedDelay: Double
    private var embedding = 0
    private var mostConcurrentEmbeds = 0
    private let lock = NSLock()
    private var preparedCount: [String: Int] = [:]
    private var prepareStarts = 0
    private var embedded = 0
    private var lentLanes: [Int] = []
    let prepareDelay: Double
    let gate = DispatchSemaphore(value: 0)
    let gated: Bool
    /// Admits `item-K` only once `K < admittedItems`, so the items that pass are the first
    /// offsets and not whichever decode slots the semaphore happens to wake.
    let gatedInItemOrder: Bool
    private let itemOrderGate = NSCondition()
    private var admittedItems = 0

    init(prepareDelay: Double = 0, gated: Bool = false, gatedInItemOrder: Bool = false, embedsOneByOne: Bool = false, embedDelay: Double = 0) {
        self.prepareDelay = prepareDelay
        self.gated = gated
        self.gatedInItemOrder = gatedInItemOrder
        self.embedsOneByOne = embedsOneByOne
        self.embedDelay = embedDelay
    }

    /// Lets `count` more held prepares through (only when `gated` or `gatedInItemOrder`).
    func open(_ count: Int) {
        if gatedInItemOrder {
            itemOrderGate.withLock { admittedItems += count }
            itemOrderGate.broadcast()
        } else {
            for _ in 0..<count { gate.signal() }
        }
    }

    private func waitForItemOrderGate(_ itemID: String) {
        let index = Int(itemID.split(separator: "-").last ?? "") ?? Int.max
        itemOrderGate.withLock { while index >= admittedItems { itemOrderGate.wait() } }
    }

    func prepare(_ event: UploadEvent) throws(ItemFailure) -> Prepared {
        let attempt = lock.withLock {
            prepareStarts += 1
            preparedCount[event.itemID, default: 0] += 1
            return preparedCount[event.itemID]!
        }
        if gated { gate.wait() }
        if gatedInItemOrder { waitForItemOrderGate(event.itemID) }
        if prepareDelay > 0 { Thread.sleep(forTimeInterval: prepareDelay) }
        if event.itemID.hasPrefix("permanent") {
            throw ItemFailure(.mediaInvalid, "scripted permanent failure")
        }
        if event.itemID.hasPrefix("transient"), let times = Int(event.itemID.dropFirst("transient".count).prefix { $0.isNumber }),
            attempt <= times
        {
            throw ItemFailure(.mediaUnavailable, "scripted timeout \(attempt)", isTransient: true)
        }
        return Prepared(itemID: event.itemID)
    }

    func embed(_ batch: [Prepared]) -> [Result<EmbeddedItem, ItemFailure>] {
        lock.withLock {
            embedded += batch.count
            embedding += 1
            mostConcurrentEmbeds = max(mostConcurrentEmbeds, embedding)
        }
        if embedDelay > 0 { Thread.sleep(forTimeInterval: embedDelay) }
        lock.withLock { embedding -= 1 }
        return batch.map { _ in
            .success(EmbeddedItem(vector: [0.6, 0.8, 0, 0], modalities: .init(visionFrames: 0, textTokens: 3, audioSeconds: 0)))
        }
    }

    func embed(_ batch: [Prepared], lanes: Int) -> [Result<EmbeddedItem, ItemFailure>] {
        lock.withLock { lentLanes.append(lanes) }
        return embed(batch)
    }

    func attempts(_ itemID: String) -> Int { lock.withLock { preparedCount[itemID] ?? 0 } }
    /// The `lanes` each `embed(_:lanes:)` call was given, in call order.
    var lanesPerCall: [Int] { lock.withLock { lentLanes } }
    var prepareCount: Int { lock.withLock { prepareStarts } }
    var embeddedCount: Int { lock.withLock { embedded } }
    /// The most `embed` calls that ran at the same time.
    var embedConcurrency: Int { lock.withLock { mostConcurrentEmbeds } }
}

/// Polls `condition` every 10 ms for up to `seconds`.
func eventually(_ seconds: Double = 10, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        Thread.sleep(forTimeInterval: 0.01)
    }
    return condition()
}

extension KafkaProducerRecord {
    func header(_ key: String) -> String? {
        headers.last { $0.key == key }?.value.map { String(decoding: $0, as: UTF8.self) }
    }
}
