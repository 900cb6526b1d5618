import Foundation
import Logging

/// An idempotent producer over librdkafka with a per-message delivery callback.
///
/// A dedicated thread serves librdkafka's delivery reports; `onDelivery` runs on it
/// exactly once per accepted message (delivered, failed after librdkafka's retries,
/// or failed at `close`). Keep `onDelivery` short: hand work to another queue, and
/// capture only what it needs (the source partition and offset, not the input message:
/// its bytes would then be freed on the delivery thread, which costs malloc contention).
/// All methods may be called from any thread.
///
/// A fatal error (for example an idempotence sequence the broker cannot accept) fails
/// every outstanding message with that error, makes `send`/`flush` throw it, and is
/// logged at `.error`: recreate the producer or stop the process.
public final class KafkaProducer: @unchecked Sendable {
    public let configuration: KafkaProducerConfiguration
    let client: RDKafkaClient
    private let logger: Logger
    private let state: Locked<State>
    private let pollThreadExited = DispatchSemaphore(value: 0)

    private struct State {
        var fatal: KafkaError?
        var closed = false
        var stopPolling = false
        /// The polling thread, so a close from inside a delivery callback does not wait for itself.
        var pollThread: pthread_t?
    }

    public init(configuration: KafkaProducerConfiguration, logger: Logger = Logger(label: "ember.kafka.producer")) throws(KafkaError) {
        self.configuration = configuration
        self.logger = logger
        let client = try RDKafkaClient(kind: .producer, properties: configuration.librdkafkaProperties(), logger: logger)
        let state = Locked(State())
        self.client = client
        self.state = state
        // Weak: the client owns its callbacks, a strong capture would leak the handle.
        client.callbacks.onError = { [weak client] error in
            guard error.isFatal else {
                logger.debug("Kafka producer error (librdkafka retries)", metadata: ["kafka.error": "\(error)"])
                return
            }
            let first = state.withLock { state in
                defer { state.fatal = state.fatal ?? error }
                return state.fatal == nil
            }
            guard first else { return }
            logger.error("Kafka producer failed fatally; outstanding messages fail", metadata: ["kafka.error": "\(error)"])
            client?.purgeAll()
        }
        // The thread holds the client and state, never self, so deinit can stop it; it
        // drops its client reference on exit so the handle is destroyed with the producer.
        let exited = pollThreadExited
        let polled = Locked<RDKafkaClient?>(client)
        let thread = Thread {
            state.withLock { $0.pollThread = pthread_self() }
            while !state.withLock({ $0.stopPolling }), let client = polled.withLock({ $0 }) {
                client.poll(timeoutMilliseconds: 100)
            }
            polled.withLock { $0 }?.poll(timeoutMilliseconds: 0)  // reports of a last-moment purge
            polled.withLock { $0 = nil }
            exited.signal()
        }
        thread.name = "ember.kafka.producer.poll"
        thread.start()
    }

    deinit {
        try? close(timeout: .zero)
    }

    /// The fatal error that stopped this producer, if any.
    /// Asks librdkafka directly: its error callback may not have been served yet.
    public var fatalError: KafkaError? { state.withLock { $0.fatal } ?? client.fatalError }

    /// Raises a real librdkafka fatal error (`rd_kafka_test_fatal_error`), for tests of
    /// what a worker does when its producer dies.
    package func triggerFatalErrorForTesting(reason: String) {
        client.triggerFatalErrorForTesting(reason: reason)
    }

    /// Messages sent and not yet reported.
    public var outstandingCount: Int { Int(client.outstandingCount) }

    /// Enqueues `record` (bytes are copied). `onDelivery` is called once with the
    /// broker's offset or the final error. When librdkafka's queue is full, waits up to
    /// `enqueueTimeout` for room. Throws (and never calls `onDelivery`) when the message
    /// cannot be enqueued: closed, fatal error, queue still full, unknown topic.
    public func send(
        _ record: KafkaProducerRecord,
        onDelivery: @escaping @Sendable (Result<KafkaDelivery, KafkaError>) -> Void
    ) throws(KafkaError) {
        let (closed, fatal) = state.withLock { ($0.closed, $0.fatal) }
        if let fatal { throw fatal }
        if closed { throw .closed("producer") }
        let box = Unmanaged.passRetained(RDKafkaDeliveryBox(onDelivery))
        var deadline: ContinuousClock.Instant?
        while let error = client.produce(record, delivery: box.toOpaque()) {
            if error.errorCode == .queueFull {
                let now = ContinuousClock.now
                let until = deadline ?? now.advanced(by: configuration.enqueueTimeout)
                deadline = until
                if now < until {
                    Thread.sleep(forTimeInterval: 0.001)  // the poll thread frees room
                    continue
                }
            }
            box.release()
            if error.isFatal { state.withLock { $0.fatal = $0.fatal ?? error } }
            throw error
        }
    }

    /// Waits until every sent message is reported, up to `timeout`. Throws `timedOut`
    /// when messages are still outstanding, or the fatal error.
    public func flush(timeout: Duration) throws(KafkaError) {
        let done = client.flush(timeoutMilliseconds: timeout.timeoutMilliseconds)
        if let fatal = fatalError { throw fatal }
        if !done {
            throw .client("flush timed out after \(timeout) with \(client.outstandingCount) message(s) outstanding", code: .timedOut)
        }
    }

    /// Flushes up to `timeout`, then fails whatever is left (their `onDelivery` gets
    /// `purgedFromQueue`/`purgedInFlight`), stops the polling thread. Idempotent.
    /// Throws when messages had to be failed.
    public func close(timeout: Duration) throws(KafkaError) {
        let wasOpen = state.withLock { state in
            defer { state.closed = true }
            return !state.closed
        }
        guard wasOpen else { return }
        if let pollThread = state.withLock({ $0.pollThread }), pthread_equal(pollThread, pthread_self()) != 0 {
            // Released from inside a delivery callback: waiting here would wait for this
            // very thread. Fail what is left and let the loop end after this callback.
            let leftOver = client.outstandingCount
            client.purgeAll()
            state.withLock { $0.stopPolling = true }
            logger.debug("Kafka producer closed from its delivery thread", metadata: ["kafka.outstanding": "\(leftOver)"])
            return
        }
        var leftOver: Int32 = 0
        if !client.flush(timeoutMilliseconds: timeout.timeoutMilliseconds) {
            leftOver = client.outstandingCount
            client.purgeAll()
            _ = client.flush(timeoutMilliseconds: 1000)  // serves the purge reports
        }
        state.withLock { $0.stopPolling = true }
        pollThreadExited.wait()
        logger.debug("Kafka producer closed", metadata: ["kafka.failed": "\(leftOver)"])
        if leftOver > 0 {
            throw .client("producer closed with \(leftOver) message(s) undelivered after \(timeout)", code: .timedOut)
        }
    }
}
