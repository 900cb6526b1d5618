import CoreMetrics
import Foundation
import Logging

/// The pipeline's measurements. Everything is recorded through swift-metrics (so a
/// Prometheus or other backend can be bootstrapped by the process) and also kept in
/// a small window for the periodic log line.
public final class PipelineMetrics: @unchecked Sendable {
    public enum Stage: String, Sendable, CaseIterable {
        /// Fetch, decode and preprocess one item.
        case decode
        /// One micro-batch through the model.
        case embed
        /// Send to broker acknowledgement of one record.
        case produce
        /// Poll to acknowledgement of one item.
        case total
    }

    private let itemsIn = Counter(label: "ember_items_in_total")
    private let itemsOut = Counter(label: "ember_items_out_total")
    private let retriesCounter = Counter(label: "ember_retries_total")
    private let keyframesCounter = Counter(label: "ember_keyframes_total")
    private let audioSecondsCounter = FloatingPointCounter(label: "ember_audio_seconds_total")
    private let batchSizeRecorder = Recorder(label: "ember_batch_size")
    private let inFlightGauge = Gauge(label: "ember_in_flight_items")
    private let deadLetterCounters: [FailureClass: Counter] = Dictionary(
        uniqueKeysWithValues: FailureClass.allCases.map {
            ($0, Counter(label: "ember_dead_letters_total", dimensions: [("class", $0.rawValue)]))
        })
    private let stageTimers: [Stage: CoreMetrics.Timer] = Dictionary(
        uniqueKeysWithValues: Stage.allCases.map {
            ($0, CoreMetrics.Timer(label: "ember_stage_duration_seconds", dimensions: [("stage", $0.rawValue)], preferredDisplayUnit: .seconds))
        })
    private let queueGauges: [String: Gauge] = Dictionary(
        uniqueKeysWithValues: ["decode", "embed"].map { ($0, Gauge(label: "ember_queue_depth", dimensions: [("queue", $0)])) })

    private let lock = NSLock()
    private var totals = Counts()
    private var window = Counts()
    private var windowStart = DispatchTime.now().uptimeNanoseconds
    private let startedAt = DispatchTime.now().uptimeNanoseconds
    private var latencies: [Stage: [UInt64]] = [:]
    /// Latency samples kept per stage and window; enough for p99 at ~100 items/s over 10 s.
    private let maxSamples = 4096

    struct Counts {
        var itemsIn = 0
        var itemsOut = 0
        var deadLetters: [FailureClass: Int] = [:]
        var retries = 0
        var keyframes = 0
        var audioSeconds = 0.0
        var batches = 0
        var batchItems = 0
    }

    public init() {}

    // MARK: recording

    func received() {
        itemsIn.increment()
        update { $0.itemsIn += 1 }
    }

    func embedded(keyframes: Int, audioSeconds: Double) {
        keyframesCounter.increment(by: keyframes)
        audioSecondsCounter.increment(by: audioSeconds)
        update {
            $0.keyframes += keyframes
            $0.audioSeconds += audioSeconds
        }
    }

    func produced() {
        itemsOut.increment()
        update { $0.itemsOut += 1 }
    }

    func deadLettered(_ failureClass: FailureClass) {
        deadLetterCounters[failureClass]?.increment()
        update { $0.deadLetters[failureClass, default: 0] += 1 }
    }

    func retried() {
        retriesCounter.increment()
        update { $0.retries += 1 }
    }

    func batch(size: Int) {
        batchSizeRecorder.record(size)
        update {
            $0.batches += 1
            $0.batchItems += size
        }
    }

    func duration(_ stage: Stage, nanoseconds: UInt64) {
        stageTimers[stage]?.recordNanoseconds(Int64(clamping: nanoseconds))
        lock.lock()
        defer { lock.unlock() }
        if latencies[stage, default: []].count < maxSamples { latencies[stage, default: []].append(nanoseconds) }
    }

    func queueDepths(decode: Int, embed: Int, inFlight: Int) {
        queueGauges["decode"]?.record(decode)
        queueGauges["embed"]?.record(embed)
        inFlightGauge.record(inFlight)
    }

    private func update(_ body: (inout Counts) -> Void) {
        lock.lock()
        defer { lock.unlock() }
        body(&totals)
        body(&window)
    }

    // MARK: reporting

    /// Log metadata for the periodic metrics line; starts a new window.
    func windowReport(queues: (decode: Int, embed: Int, inFlight: Int), lag: Int64?) -> Logger.Metadata {
        lock.lock()
        let counts = window
        let samples = latencies
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - windowStart) / 1e9
        window = Counts()
        latencies = [:]
        windowStart = DispatchTime.now().uptimeNanoseconds
        lock.unlock()

        var metadata = Self.rates(counts, seconds: elapsed)
        for stage in Stage.allCases {
            guard var values = samples[stage], !values.isEmpty else { continue }
            values.sort()
            let ms = { (q: Double) in String(format: "%.1f", Double(values[min(values.count - 1, Int(q * Double(values.count)))]) / 1e6) }
            metadata["\(stage.rawValue)_ms"] = "\(ms(0.5))/\(ms(0.95))/\(ms(0.99))"
        }
        metadata["queue_decode"] = "\(queues.decode)"
        metadata["queue_embed"] = "\(queues.embed)"
        metadata["in_flight"] = "\(queues.inFlight)"
        if let lag { metadata["lag"] = "\(lag)" }
        metadata["rss_mb"] = "\(ResidentMemory.currentMegabytes().map { String($0) } ?? "?")"
        return metadata
    }

    /// Log metadata for the summary line: totals since start.
    func summary() -> Logger.Metadata {
        lock.lock()
        let counts = totals
        lock.unlock()
        var metadata = Self.rates(counts, seconds: Double(DispatchTime.now().uptimeNanoseconds - startedAt) / 1e9)
        metadata["peak_rss_mb"] = "\(ResidentMemory.peakMegabytes().map { String($0) } ?? "?")"
        return metadata
    }

    /// Totals since start, for tests and the replay summary.
    public var itemsOutTotal: Int { lock.withLock { totals.itemsOut } }
    public var deadLettersTotal: Int { lock.withLock { totals.deadLetters.values.reduce(0, +) } }

    private static func rates(_ counts: Counts, seconds: Double) -> Logger.Metadata {
        let seconds = max(seconds, 1e-9)
        let deadLetters = counts.deadLetters.values.reduce(0, +)
        var metadata: Logger.Metadata = [
            "items_in": "\(counts.itemsIn)",
            "items_out": "\(counts.itemsOut)",
            "dead_letters": "\(deadLetters)",
            "retries": "\(counts.retries)",
            "items_per_s": "\(String(format: "%.2f", Double(counts.itemsOut + deadLetters) / seconds))",
            "keyframes_per_s": "\(String(format: "%.1f", Double(counts.keyframes) / seconds))",
            "audio_s_per_s": "\(String(format: "%.1f", counts.audioSeconds / seconds))",
            "mean_batch": "\(String(format: "%.1f", counts.batches == 0 ? 0 : Double(counts.batchItems) / Double(counts.batches)))",
        ]
        for (failureClass, count) in counts.deadLetters.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            metadata["dlq_\(failureClass.rawValue)"] = "\(count)"
        }
        return metadata
    }
}
