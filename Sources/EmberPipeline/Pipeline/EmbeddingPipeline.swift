import EmberKafka
import Foundation
import Logging

/// The bounded pipeline: consume → decode (N threads) → micro-batched embedding
/// (1 thread) → produce, with at-least-once commits.
///
///     consumer thread ──► decode queue ──► decode threads ──► embed queue ──► embed thread
///          ▲  pause/resume                      │ transient: retry later       │
///          │                                    └─► dead letter ◄──────────────┤
///          └──────── markDone(offset) ◄── delivery report ◄── output record ◄──┘
///
/// Every stage runs on its own Dispatch queue, never on the Swift concurrency pool,
/// because each blocks in C (rdkafka poll, FFmpeg, BLAS). An input offset is marked
/// done only after its output record or dead letter is acknowledged; the input commits
/// the per-partition contiguous watermark of done offsets.
public final class EmbeddingPipeline<Processor: ItemProcessor>: @unchecked Sendable {
    /// An admitted message on its way through the stages.
    struct Work: Sendable {
        var ticket: InFlightTracker.Ticket
        var message: KafkaMessage
        var attempts = 1
        var admittedAt = DispatchTime.now().uptimeNanoseconds
    }

    struct PreparedWork: Sendable {
        var work: Work
        var event: UploadEvent
        var prepared: Processor.Prepared
    }

    private let configuration: PipelineConfiguration
    private let input: any PipelineInput
    private let output: any PipelineOutput
    private let processor: Processor
    public let metrics: PipelineMetrics
    private let logger: Logger

    private let decodeQueue: BlockingQueue<Work>
    private let embedQueue: BlockingQueue<PreparedWork>
    private let retryTimer = DispatchQueue(label: "ember.pipeline.retry")

    /// Guards `tracker`, `stopRequested` and `inputClosed`.
    private let lock = NSLock()
    private var tracker: InFlightTracker
    private var stopRequested = false
    private var inputClosed = false

    private let finished = DispatchGroup()
    private var failure: (any Error)?

    public init(
        configuration: PipelineConfiguration, input: any PipelineInput, output: any PipelineOutput,
        processor: Processor, metrics: PipelineMetrics = PipelineMetrics(), logger: Logger
    ) throws(ConfigurationError) {
        try configuration.validate()
        self.configuration = configuration
        self.input = input
        self.output = output
        self.processor = processor
        self.metrics = metrics
        self.logger = logger
        // The in-flight window bounds the decode queue; it never holds more than that.
        decodeQueue = BlockingQueue(capacity: configuration.maxInFlight)
        embedQueue = BlockingQueue(capacity: configuration.embedQueueCapacity)
        tracker = InFlightTracker(pauseAt: configuration.maxInFlight, resumeBelow: configuration.resumeBelow)
    }

    // MARK: lifecycle

    /// Starts the stage threads and returns at once.
    public func start() {
        for index in 0..<configuration.decodeConcurrency {
            startThread("ember.decode.\(index)") { $0.decodeLoop() }
        }
        startThread("ember.embed") { $0.embedLoop() }
        startThread("ember.consumer") { $0.consumerLoop() }
    }

    /// Stops admitting new messages and drains: in-flight items get
    /// `drainTimeoutSeconds` to finish, then the input commits and closes.
    public func requestStop() {
        lock.withLock { stopRequested = true }
    }

    /// Blocks until the pipeline stopped (after `requestStop`, or when a bounded input
    /// is exhausted). Rethrows a fatal input error. Call from a Dispatch thread or a
    /// detached context, not from the cooperative pool.
    public func waitUntilFinished() throws {
        finished.wait()
        if let failure { throw failure }
    }

    /// Async form of `waitUntilFinished` that does not block the cooperative pool.
    public func finished() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            finished.notify(queue: .global()) { [self] in
                if let failure { continuation.resume(throwing: failure) } else { continuation.resume() }
            }
        }
    }

    private func startThread(_ label: String, _ body: @escaping @Sendable (EmbeddingPipeline) -> Void) {
        finished.enter()
        DispatchQueue(label: label).async { [self] in
            body(self)
            finished.leave()
        }
    }

    // MARK: consumer stage

    private func consumerLoop() {
        var isPaused = false
        var drainDeadline: UInt64?
        var lastReport = DispatchTime.now().uptimeNanoseconds
        defer { shutDown() }
        do {
            while true {
                let (stopping, wantsPause, inFlight) = lock.withLock { (stopRequested, tracker.wantsPause, tracker.inFlight) }
                if stopping && drainDeadline == nil {
                    drainDeadline = DispatchTime.now().uptimeNanoseconds + UInt64(configuration.drainTimeoutSeconds * 1e9)
                    logger.info("draining", metadata: ["in_flight": "\(inFlight)"])
                }
                if let drainDeadline {
                    if inFlight == 0 { break }
                    if DispatchTime.now().uptimeNanoseconds >= drainDeadline {
                        logger.warning("drain deadline passed; in-flight items will be re-processed", metadata: ["in_flight": "\(inFlight)"])
                        break
                    }
                }
                if input.isExhausted && inFlight == 0 { break }

                // Keep polling while paused or draining: it serves rebalances and keeps the member alive.
                let shouldPause = wantsPause || stopping
                if shouldPause != isPaused {
                    shouldPause ? input.pauseAll() : input.resumeAll()
                    isPaused = shouldPause
                    logger.debug(shouldPause ? "paused input" : "resumed input", metadata: ["in_flight": "\(inFlight)"])
                }
                for event in try input.poll(timeout: .milliseconds(100)) {
                    switch event {
                    case .message(let message):
                        admit(message)
                    case .revoked(let partitions), .lost(let partitions):
                        revoke(partitions)
                    case .assigned(let partitions):
                        logger.info("partitions assigned", metadata: ["partitions": "\(partitions.sorted())"])
                        // Newly assigned partitions start fetching; re-apply a pause.
                        if isPaused { input.pauseAll() }
                    case .error(let error):
                        logger.warning("Kafka consumer error; librdkafka retries", metadata: ["error": "\(error)"])
                    }
                }
                metrics.queueDepths(decode: decodeQueue.count, embed: embedQueue.count, inFlight: inFlight)
                let now = DispatchTime.now().uptimeNanoseconds
                if configuration.metricsIntervalSeconds > 0 && Double(now - lastReport) >= configuration.metricsIntervalSeconds * 1e9 {
                    lastReport = now
                    let queues = (decode: decodeQueue.count, embed: embedQueue.count, inFlight: inFlight)
                    logger.info("metrics", metadata: metrics.windowReport(queues: queues, lag: input.totalLag()))
                }
            }
        } catch {
            logger.error("input failed; stopping", metadata: ["error": "\(error)"])
            failure = error
        }
    }

    private func admit(_ message: KafkaMessage) {
        metrics.received()
        let partition = KafkaTopicPartition(topic: message.topic, partition: message.partition)
        let ticket = lock.withLock { tracker.admit(partition, offset: message.offset) }
        // Bounded by the in-flight window: the input pauses at maxInFlight.
        decodeQueue.force(Work(ticket: ticket, message: message))
    }

    private func revoke(_ partitions: [KafkaTopicPartition]) {
        let revoked = Set(partitions)
        lock.withLock { tracker.revoke(partitions) }
        let dropped = decodeQueue.removeAll { revoked.contains($0.ticket.partition) }
        for work in dropped { finish(work, delivered: false) }
        logger.info("partitions revoked", metadata: ["partitions": "\(partitions)", "dropped_queued": "\(dropped.count)"])
    }

    /// After the consumer loop: stop workers, flush the output, commit and close the input.
    private func shutDown() {
        decodeQueue.close()
        embedQueue.close()
        do {
            try output.flush(timeout: .seconds(10))
        } catch {
            logger.warning("output flush incomplete", metadata: ["error": "\(error)"])
        }
        lock.withLock { inputClosed = true }
        do {
            try input.close()
        } catch {
            logger.warning("input close failed", metadata: ["error": "\(error)"])
        }
        logger.info("pipeline stopped", metadata: metrics.summary())
    }

    // MARK: decode stage

    private func decodeLoop() {
        while let work = decodeQueue.take().first {
            guard isCurrent(work) else {
                finish(work, delivered: false)
                continue
            }
            let start = DispatchTime.now().uptimeNanoseconds
            let event: UploadEvent
            do {
                event = try UploadEvent.parse(work.message.value)
            } catch {
                deadLetter(work, error)
                continue
            }
            do {
                let prepared = try processor.prepare(event)
                metrics.duration(.decode, nanoseconds: DispatchTime.now().uptimeNanoseconds - start)
                if !embedQueue.put(PreparedWork(work: work, event: event, prepared: prepared)) {
                    finish(work, delivered: false)  // shutting down: not committed, re-processed later
                }
            } catch where error.isTransient && work.attempts < configuration.maxAttempts {
                retryLater(work, error)
            } catch {
                deadLetter(work, error)
            }
        }
    }

    private func retryLater(_ work: Work, _ error: ItemFailure) {
        metrics.retried()
        let delay = configuration.retryDelay(afterAttempt: work.attempts)
        logger.debug(
            "transient failure; retrying",
            metadata: ["item_offset": "\(work.ticket.offset)", "attempt": "\(work.attempts)", "delay_s": "\(delay)", "error": "\(error)"])
        var retry = work
        retry.attempts += 1
        let next = retry
        retryTimer.asyncAfter(deadline: .now() + delay) { [self] in
            // The item still holds its in-flight slot, so it may exceed the queue's capacity.
            decodeQueue.force(next)
        }
    }

    // MARK: embed stage

    private func embedLoop() {
        while true {
            // Embedding one by one (batch-invariant), waiting for a fuller batch gains nothing.
            let oneByOne = processor.embedsOneByOne
            let batch = embedQueue.take(upTo: configuration.maxBatchSize, maxWait: oneByOne ? 0 : configuration.maxBatchWaitSeconds)
            if batch.isEmpty { return }
            var current: [PreparedWork] = []
            for item in batch {
                if isCurrent(item.work) { current.append(item) } else { finish(item.work, delivered: false) }
            }
            guard !current.isEmpty else { continue }
            let start = DispatchTime.now().uptimeNanoseconds
            let results = processor.embed(current.map(\.prepared))
            metrics.duration(.embed, nanoseconds: DispatchTime.now().uptimeNanoseconds - start)
            for size in oneByOne ? Array(repeating: 1, count: current.count) : [current.count] { metrics.batch(size: size) }
            for (index, item) in current.enumerated() {
                let result = index < results.count ? results[index] : .failure(ItemFailure(.modelError, "model returned \(results.count) results for \(current.count) items"))
                switch result {
                case .success(let embedded):
                    publish(item, embedded)
                case .failure(let error):
                    deadLetter(item.work, error)
                }
            }
        }
    }

    // MARK: produce stage

    private func publish(_ item: PreparedWork, _ embedded: EmbeddedItem) {
        guard isCurrent(item.work) else {
            finish(item.work, delivered: false)
            return
        }
        let message = item.work.message
        let record = EmbeddingRecord(
            itemID: item.event.itemID, model: processor.modelID, vector: embedded.vector, dtype: configuration.outputDType,
            semanticID: embedded.semanticID, modalities: embedded.modalities,
            source: .init(topic: message.topic, partition: message.partition.rawValue, offset: message.offset.rawValue),
            uploadedAt: item.event.uploadedAt, embeddedAt: Date())
        metrics.embedded(keyframes: embedded.modalities.visionFrames, audioSeconds: embedded.modalities.audioSeconds)
        let value: [UInt8]
        do {
            value = try record.jsonBytes()
        } catch {
            deadLetter(item.work, ItemFailure(.modelError, "cannot encode the output record: \(error)"))
            return
        }
        let output = KafkaProducerRecord(
            topic: configuration.outputTopic, key: Array(item.event.itemID.utf8), value: value, headers: record.headers)
        send(item.work, output) { [self] in metrics.produced() }
    }

    private func deadLetter(_ work: Work, _ failure: ItemFailure) {
        logger.debug(
            "dead letter",
            metadata: ["partition": "\(work.ticket.partition)", "offset": "\(work.ticket.offset)", "error": "\(failure)"])
        let record = KafkaDeadLetter.record(
            for: work.message, topic: configuration.deadLetterTopic, errorClass: failure.failureClass.rawValue,
            errorMessage: failure.message, attempts: work.attempts)
        send(work, record) { [self] in metrics.deadLettered(failure.failureClass) }
    }

    /// Sends a record for `work`; on acknowledgement marks the input offset done.
    /// A failed delivery is sent again with backoff: the offset must not be committed
    /// without its output, and librdkafka has already retried what it could.
    private func send(
        _ work: Work, _ record: KafkaProducerRecord, attempt: Int = 1, onAcknowledged: @escaping @Sendable () -> Void
    ) {
        let sentAt = DispatchTime.now().uptimeNanoseconds
        let resend: @Sendable (KafkaError) -> Void = { [self] error in
            guard isCurrent(work), !lock.withLock({ inputClosed }) else {
                finish(work, delivered: false)
                return
            }
            let delay = configuration.retryDelay(afterAttempt: attempt)
            logger.warning("delivery failed; sending again", metadata: ["topic": "\(record.topic)", "attempt": "\(attempt)", "error": "\(error)"])
            retryTimer.asyncAfter(deadline: .now() + delay) { [self] in
                send(work, record, attempt: attempt + 1, onAcknowledged: onAcknowledged)
            }
        }
        do {
            try output.send(record) { [self] result in
                switch result {
                case .success:
                    let now = DispatchTime.now().uptimeNanoseconds
                    metrics.duration(.produce, nanoseconds: now - sentAt)
                    metrics.duration(.total, nanoseconds: now - work.admittedAt)
                    onAcknowledged()
                    finish(work, delivered: true)
                case .failure(let error):
                    resend(error)
                }
            }
        } catch {
            resend(error)
        }
    }

    // MARK: bookkeeping

    private func isCurrent(_ work: Work) -> Bool {
        lock.withLock { tracker.isCurrent(work.ticket) }
    }

    /// The item left the pipeline; mark its offset done when it was delivered and its
    /// partition is still ours.
    private func finish(_ work: Work, delivered: Bool) {
        let (markDone, closed) = lock.withLock { (tracker.finish(work.ticket), inputClosed) }
        if delivered && markDone && !closed {
            input.markDone(work.ticket.partition, offset: work.ticket.offset)
        }
    }
}
