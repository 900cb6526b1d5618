import EmberKafka
import Foundation
import Logging
import Tracing

/// The bounded pipeline: consume → decode (N threads) → embedding (M lanes, each one
/// item at a time when batch-invariant, else micro-batches) → produce, with
/// at-least-once commits.
///
///     consumer thread ──► decode queue ──► decode threads ──► embed queue ──► embed lanes
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
        /// The item's trace context (after its `consume` span).
        var trace = InstrumentationContext.topLevel
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
    /// Liveness of the stage threads, for `/healthz`.
    public let heartbeats = StageHeartbeats()
    private let tracing: PipelineTracing
    private let logger: Logger

    private let decodeQueue: BlockingQueue<Work>
    private let embedQueue: BlockingQueue<PreparedWork>
    private let retryTimer = DispatchQueue(label: "ember.pipeline.retry")

    /// Guards `tracker`, `stopRequested`, `admitting`, `inputClosed` and `failure`.
    private let lock = NSLock()
    private var tracker: InFlightTracker
    private var stopRequested = false
    /// False once the drain deadline passed or the pipeline failed: the stages take no
    /// more work, so shutdown keeps its deadline.
    private var admitting = true
    private var inputClosed = false
    /// The fatal error that stopped the pipeline (a dead producer or input); the first one wins.
    private var failure: (any Error)?

    private let finished = DispatchGroup()
    /// Embedding lanes inside a model call, for lending idle lanes' cores (`lendIdleCores`).
    private let busyLanes = NSLock()
    private var busyLaneCount = 0

    public init(
        configuration: PipelineConfiguration, input: any PipelineInput, output: any PipelineOutput,
        processor: Processor, metrics: PipelineMetrics = PipelineMetrics(), tracer: (any Tracer)? = nil, logger: Logger
    ) throws(ConfigurationError) {
        try configuration.validate()
        self.configuration = configuration
        self.input = input
        self.output = output
        self.processor = processor
        self.metrics = metrics
        tracing = PipelineTracing(enabled: configuration.propagateTraceContext, tracer: tracer)
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
            startThread("ember.decode.\(index)") { $0.decodeLoop(slot: $1) }
        }
        for index in 0..<configuration.embedLanes {
            startThread("ember.embed.\(index)") { $0.embedLoop(slot: $1) }
        }
        startThread("ember.consumer") { $0.consumerLoop(slot: $1) }
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
        if let failure = lock.withLock({ failure }) { throw failure }
    }

    /// Async form of `waitUntilFinished` that does not block the cooperative pool.
    public func finished() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            finished.notify(queue: .global()) { [self] in
                if let failure = lock.withLock({ failure }) { continuation.resume(throwing: failure) } else { continuation.resume() }
            }
        }
    }

    private func startThread(_ label: String, _ body: @escaping @Sendable (EmbeddingPipeline, Int) -> Void) {
        finished.enter()
        let slot = heartbeats.register(String(label.dropFirst("ember.".count)))
        DispatchQueue(label: label).async { [self] in
            body(self, slot)
            heartbeats.finish(slot)
            finished.leave()
        }
    }

    // MARK: consumer stage

    private func consumerLoop(slot: Int) {
        var isPaused = false
        var heldBack: Set<KafkaTopicPartition> = []
        var drainDeadline: UInt64?
        var lastReport = DispatchTime.now().uptimeNanoseconds
        defer { shutDown() }
        do {
            while true {
                heartbeats.beat(slot)
                let (stopping, wantsPause, inFlight, failed) = lock.withLock { (stopRequested, tracker.wantsPause, tracker.inFlight, failure != nil) }
                if failed { break }  // nothing more can be acknowledged: stop at once, commit what was
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
                if !shouldPause {
                    // One partition's backlog must not take the whole window (see InFlightTracker).
                    let backlogged = input.backloggedPartitions()
                    let held = lock.withLock { tracker.holdBack(backlogged: backlogged) }
                    if held != heldBack {
                        input.holdBack(held)
                        heldBack = held
                    }
                }
                for event in try input.poll(timeout: .milliseconds(100)) {
                    switch event {
                    case .message(let message):
                        admit(message)
                    case .revoked(let partitions), .lost(let partitions):
                        revoke(partitions)
                    case .assigned(let partitions):
                        // The input applies its current pause state to them.
                        logger.info("partitions assigned", metadata: ["partitions": "\(partitions.sorted())"])
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
            fail(error, "input failed; stopping")
        }
    }

    /// A fatal error: nothing further can be acknowledged, so the pipeline stops without
    /// draining. Offsets stay at what was acknowledged; the group reassigns the rest.
    private func fail(_ error: any Error, _ message: Logger.Message) {
        let first = lock.withLock {
            defer { failure = failure ?? error; admitting = false }
            return failure == nil
        }
        if first { logger.error(message, metadata: ["error": "\(error)"]) }
    }

    private func admit(_ message: KafkaMessage) {
        metrics.received()
        let partition = KafkaTopicPartition(topic: message.topic, partition: message.partition)
        let ticket = lock.withLock { tracker.admit(partition, offset: message.offset) }
        // Bounded by the in-flight window: the input pauses at maxInFlight.
        decodeQueue.force(Work(ticket: ticket, message: message, trace: tracing.consumed(message)))
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
        // The stages take no more work: what is still queued (after a drain deadline or
        // a failure) is left uncommitted for the next owner, not processed late.
        lock.withLock { admitting = false }
        for work in decodeQueue.close() { finish(work, delivered: false) }
        for item in embedQueue.close() { finish(item.work, delivered: false) }
        let failed = lock.withLock { failure != nil }
        do {
            if !failed { try output.flush(timeout: .seconds(10)) }
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

    private func decodeLoop(slot: Int) {
        heartbeats.idle(slot)
        while let work = decodeQueue.take().first {
            heartbeats.busy(slot)
            defer { heartbeats.idle(slot) }
            guard shouldProcess(work) else {
                finish(work, delivered: false)
                continue
            }
            let span = tracing.startSpan("decode", work.trace)
            defer { span.end() }
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
            if !decodeQueue.force(next) { finish(next, delivered: false) }
        }
    }

    // MARK: embed stage

    private func embedLoop(slot: Int) {
        while true {
            heartbeats.idle(slot)
            // Embedding one by one (batch-invariant), a lane takes one item at a time, so
            // the lanes share the queue evenly and none waits for a fuller batch.
            let oneByOne = processor.embedsOneByOne
            let batch = oneByOne
                ? embedQueue.take(upTo: 1)
                : embedQueue.take(upTo: configuration.maxBatchSize, maxWait: configuration.maxBatchWaitSeconds)
            if batch.isEmpty { return }
            heartbeats.busy(slot)
            var current: [PreparedWork] = []
            for item in batch {
                if shouldProcess(item.work) { current.append(item) } else { finish(item.work, delivered: false) }
            }
            guard !current.isEmpty else { continue }
            let start = DispatchTime.now().uptimeNanoseconds
            let spanStart = DefaultTracerClock.now
            let lanes = beginEmbedding()
            let results = processor.embed(current.map(\.prepared), lanes: lanes)
            endEmbedding()
            metrics.duration(.embed, nanoseconds: DispatchTime.now().uptimeNanoseconds - start)
            for item in current { tracing.recordSpan("embed", item.work.trace, from: spanStart, batchSize: current.count) }
            metrics.batch(size: current.count)
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

    /// Marks a lane busy and returns the lanes' worth of cores its call may use: its own,
    /// plus every idle lane's with `lendIdleCores`.
    private func beginEmbedding() -> Int {
        busyLanes.withLock {
            busyLaneCount += 1
            return configuration.lendIdleCores ? 1 + max(configuration.embedLanes - busyLaneCount, 0) : 1
        }
    }

    private func endEmbedding() {
        busyLanes.withLock { busyLaneCount -= 1 }
    }

    // MARK: produce stage

    private func publish(_ item: PreparedWork, _ embedded: EmbeddedItem) {
        guard isCurrent(item.work) else {
            finish(item.work, delivered: false)
            return
        }
        let message = item.work.message
        var record = EmbeddingRecord(
            itemID: item.event.itemID, model: processor.modelID, vector: embedded.vector, encoding: configuration.outputEncoding,
            semanticID: embedded.semanticID, matryoshka: embedded.matryoshka, raw: embedded.raw, modalities: embedded.modalities,
            source: .init(topic: message.topic, partition: message.partition.rawValue, offset: message.offset.rawValue),
            uploadedAt: item.event.uploadedAt, embeddedAt: Date())
        record.attach(embedded.transcript)
        metrics.embedded(keyframes: embedded.modalities.visionFrames, audioSeconds: embedded.modalities.audioSeconds)
        let value: [UInt8]
        do {
            value = try configuration.outputFormat.encode(record)
        } catch {
            deadLetter(item.work, ItemFailure(.modelError, "cannot encode the output record: \(error)"))
            return
        }
        let span = tracing.startSpan("produce", item.work.trace, kind: .producer)
        defer { span.end() }
        let output = KafkaProducerRecord(
            topic: configuration.outputTopic, key: Array(item.event.itemID.utf8), value: value,
            headers: tracing.headers(record.headers(configuration.outputFormat), for: span))
        send(item.work, output) { [self] in metrics.produced() }
    }

    private func deadLetter(_ work: Work, _ failure: ItemFailure) {
        logger.debug(
            "dead letter",
            metadata: ["partition": "\(work.ticket.partition)", "offset": "\(work.ticket.offset)", "error": "\(failure)"])
        var record = KafkaDeadLetter.record(
            for: work.message, topic: configuration.deadLetterTopic, errorClass: failure.failureClass.rawValue,
            errorMessage: failure.message, attempts: work.attempts)
        let span = tracing.startSpan("produce", work.trace, kind: .producer)
        defer { span.end() }
        span.attributes["ember.error_class"] = failure.failureClass.rawValue
        record.headers = tracing.headers(record.headers, for: span)
        send(work, record, as: .deadLetter(failure)) { [self] in metrics.deadLettered(failure.failureClass) }
    }

    /// What a record is to its item, which decides what a permanent refusal leads to.
    private enum Outgoing: Sendable {
        /// The embedding: refused for good, the item is dead-lettered instead.
        case output
        /// The item's dead letter: refused for good, a small one without the original value is sent.
        case deadLetter(ItemFailure)
        /// The small dead letter: refused for good, nothing can record the item and the pipeline stops.
        case minimalDeadLetter
    }

    /// Sends a record for `work`; on acknowledgement marks the input offset done.
    /// A transient delivery failure is sent again with backoff (the offset must not be
    /// committed without its output, and librdkafka has already retried what it could);
    /// a permanent one leads to the item's dead letter; a fatal one stops the pipeline.
    private func send(
        _ work: Work, _ record: KafkaProducerRecord, as outgoing: Outgoing = .output, attempt: Int = 1,
        onAcknowledged: @escaping @Sendable () -> Void
    ) {
        let sentAt = DispatchTime.now().uptimeNanoseconds
        let failed: @Sendable (KafkaError) -> Void = { [self] error in
            guard isCurrent(work), !lock.withLock({ inputClosed }) else {
                finish(work, delivered: false)
                return
            }
            if error.isFatal {
                finish(work, delivered: false)
                fail(error, "output failed fatally; stopping without committing unacknowledged work")
            } else if error.isPermanentDeliveryFailure {
                refused(work, record, as: outgoing, error)
            } else {
                let delay = configuration.retryDelay(afterAttempt: attempt)
                logger.warning("delivery failed; sending again", metadata: ["topic": "\(record.topic)", "attempt": "\(attempt)", "error": "\(error)"])
                retryTimer.asyncAfter(deadline: .now() + delay) { [self] in
                    send(work, record, as: outgoing, attempt: attempt + 1, onAcknowledged: onAcknowledged)
                }
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
                    failed(error)
                }
            }
        } catch {
            failed(error)
        }
    }

    /// The broker refused `record` for good: fall back to the next smaller record that
    /// still accounts for the item, so its offset can be committed and nothing is lost.
    private func refused(_ work: Work, _ record: KafkaProducerRecord, as outgoing: Outgoing, _ error: KafkaError) {
        logger.warning("record refused for good", metadata: ["topic": "\(record.topic)", "offset": "\(work.ticket.offset)", "error": "\(error)"])
        switch outgoing {
        case .output:
            deadLetter(work, ItemFailure(.outputRejected, "the output record to \(record.topic) was refused: \(error)"))
        case .deadLetter(let failure):
            var minimal = KafkaDeadLetter.record(
                for: work.message, topic: configuration.deadLetterTopic, errorClass: failure.failureClass.rawValue,
                errorMessage: "\(failure.message) (the original event is left out: its dead letter was refused: \(error))",
                attempts: work.attempts, includingOriginal: false)
            // The trace context survives (it is small; the refused part was the value or
            // the other headers), so the item's trace still ends at its dead letter.
            minimal.headers += work.message.headers.filter { PipelineTracing.headerNames.contains($0.key) && ($0.value?.count ?? 0) <= 512 }
            let span = tracing.startSpan("produce", work.trace, kind: .producer)
            defer { span.end() }
            minimal.headers = tracing.headers(minimal.headers, for: span)
            send(work, minimal, as: .minimalDeadLetter) { [self] in metrics.deadLettered(failure.failureClass) }
        case .minimalDeadLetter:
            finish(work, delivered: false)
            fail(
                PipelineError.deadLetterRefused(topic: record.topic, partition: work.ticket.partition, offset: work.ticket.offset, reason: error),
                "dead-letter topic refuses records; stopping so the item is not lost")
        }
    }

    // MARK: bookkeeping

    private func isCurrent(_ work: Work) -> Bool {
        lock.withLock { tracker.isCurrent(work.ticket) }
    }

    /// Whether a stage should start work on the item: its partition is still ours and
    /// the pipeline still admits work (not past its drain deadline, not failed).
    private func shouldProcess(_ work: Work) -> Bool {
        lock.withLock { admitting && tracker.isCurrent(work.ticket) }
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
