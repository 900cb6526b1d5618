import ArgumentParser
import EmberKafka
import EmberMedia
import EmberModel
import EmberPipeline
import Foundation
import Logging

/// `ember bench pipeline`: the whole worker (Kafka in, decode, embed, Kafka out) on a
/// set of sample items, against the engine-only bound measured in the same run on the
/// same items: decoding and Kafka should overlap the model, so the ratio approaches 1.
struct BenchPipeline: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipeline",
        abstract: "End-to-end items/s vs the engine-only bound, CPU utilization and RSS over time.",
        discussion: "Make the samples with `Ops/samples DIR 40`; Ops/bench-pipeline does everything.")

    @Option(help: "Kafka bootstrap servers.") var brokers = "127.0.0.1:9092"
    @Option(help: "Directory made by Ops/samples (events.jsonl, media/).") var samples: String
    @Option(help: "Model directory (default $EMBER_MODEL_DIR or ~/.cache/ember/models/omni-small).") var model = ModelDirectory.resolved()
    @Option(help: "Keep re-sending the samples for this many seconds (RSS over time); 0: one pass.") var duration: Double = 0
    @Option(help: "Decode threads.") var decodeConcurrency = 2
    @Option(help: "Embedding lanes (the worker's pipeline.embed_lanes), for the pipeline and the engine-only bound.") var embedLanes = PipelineConfiguration().embedLanes
    @Flag(help: "Embed micro-batches in shared matrices (not batch-invariant).") var batched = false
    @Flag(inversion: .prefixedNo, help: "Lend idle lanes' cores to a lane's item (the worker's pipeline.lend_idle_cores).")
    var lendIdleCores = PipelineConfiguration().lendIdleCores
    @Option(help: "Arithmetic: auto, fp32 or bf16 (the worker's model.precision).") var precision: String = "auto"

    func run() throws {
        ProcessLogging.bootstrap(level: .warning)
        let logger = Logger(label: "ember.bench")
        let events = try String(contentsOfFile: samples + "/events.jsonl", encoding: .utf8).split(separator: "\n").map(String.init)
        guard !events.isEmpty else { throw ValidationError("no events in \(samples)/events.jsonl") }
        var media = MediaConfiguration()
        media.uriPolicy = URIPolicy(mediaRoot: samples + "/media")
        // One thread per lane and one BLAS thread, as the worker's defaults; an item may run
        // on the idle lanes' threads too (lendIdleCores), so the engine is sized for all lanes.
        BLASThreads.count = 1
        guard let setting = PrecisionSetting(rawValue: precision.lowercased()) else { throw ValidationError("--precision must be auto, fp32 or bf16") }
        let engine = try EmbeddingEngine(modelDirectory: URL(fileURLWithPath: model), threads: lendIdleCores ? embedLanes : 1,
                                         precision: try ModelPrecision.resolve(setting), logger: logger)
        let processor = try MediaModelProcessor(engine: engine, media: media, batchInvariant: !batched, threadsPerLane: 1)
        print("OpenBLAS \(BLASThreads.coreName), \(ProcessInfo.processInfo.activeProcessorCount) cores, \(events.count) items, model \(processor.modelID) (\(engine.precision.rawValue))")

        // 1. Engine-only bound: the same items, decoded beforehand, embedded back to back.
        let parsed = try events.map { try UploadEvent.parse(Array($0.utf8)) }
        let prepared = try parsed.map { try processor.prepare($0) }
        // Best of two passes (the first also pays for page faults and warm-up), on
        // Dispatch threads like the pipeline's embedding lanes: lane k embeds chunks
        // k, k + lanes, … (chunks of one item when batch-invariant, else of 16).
        let lanes = embedLanes
        let chunkSize = processor.embedsOneByOne ? 1 : 16
        let engineSeconds = onDispatchThread {
            var best = Double.infinity
            for _ in 0..<2 {
                let engineStart = ContinuousClock.now
                let chunks = Array(stride(from: 0, to: prepared.count, by: chunkSize))
                DispatchQueue.concurrentPerform(iterations: lanes) { lane in
                    for chunk in chunks.indices where chunk % lanes == lane {
                        let start = chunks[chunk]
                        _ = processor.embed(Array(prepared[start..<min(start + chunkSize, prepared.count)]))
                    }
                }
                best = min(best, (ContinuousClock.now - engineStart).seconds)
            }
            return best
        }
        let engineRate = Double(prepared.count) / engineSeconds
        print(String(format: "engine only:  %6.2f items/s  (%.1f s for %d items, %d lanes)", engineRate, engineSeconds, prepared.count, lanes))

        // 2. End to end through Kafka with the worker's pipeline.
        let id = UUID().uuidString.prefix(8).lowercased()
        let input = "bench-\(id).in", output = "bench-\(id).out", deadLetters = "bench-\(id).dlq"
        try KafkaAdmin(bootstrapServers: brokers).ensureTopics([
            KafkaTopicSpec(name: input, partitions: 4), KafkaTopicSpec(name: output, partitions: 4),
            KafkaTopicSpec(name: deadLetters, partitions: 1),
        ])
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(bootstrapServers: brokers))
        func sendEvents() throws {
            for event in events {
                try producer.send(KafkaProducerRecord(topic: input, key: nil, value: Array(event.utf8), headers: [])) { _ in }
            }
            try producer.flush(timeout: .seconds(30))
        }
        try sendEvents()
        var consumerConfiguration = KafkaConsumerConfiguration(bootstrapServers: brokers, groupID: "bench-\(id)", topics: [input])
        consumerConfiguration.sessionTimeout = .seconds(6)
        consumerConfiguration.heartbeatInterval = .seconds(1)
        consumerConfiguration.maxMessagesPerPoll = 16
        let consumer = try KafkaConsumer(configuration: consumerConfiguration)
        var pipelineConfiguration = PipelineConfiguration()
        pipelineConfiguration.lendIdleCores = lendIdleCores
        pipelineConfiguration.outputTopic = output
        pipelineConfiguration.deadLetterTopic = deadLetters
        pipelineConfiguration.decodeConcurrency = decodeConcurrency
        pipelineConfiguration.embedLanes = embedLanes
        pipelineConfiguration.metricsIntervalSeconds = 0
        let pipeline = try EmbeddingPipeline(
            configuration: pipelineConfiguration, input: consumer, output: producer, processor: processor, logger: logger)
        pipeline.start()

        // The clock starts at the first finished item: group join time is the broker's, not ours.
        var sent = events.count
        var firstDone: ContinuousClock.Instant?
        var usageAtFirst = CPUUsage.now()
        var rssSamples: [(Double, Int)] = []
        let runStart = ContinuousClock.now
        var lastSample = runStart
        while true {
            let done = pipeline.metrics.itemsOutTotal + pipeline.metrics.deadLettersTotal
            if firstDone == nil && done > 0 {
                firstDone = ContinuousClock.now
                usageAtFirst = CPUUsage.now()
            }
            if let firstDone, duration > 0, (ContinuousClock.now - firstDone).seconds < duration, done >= sent - events.count / 2 {
                try sendEvents()
                sent += events.count
            }
            if ContinuousClock.now - lastSample >= .seconds(10) {
                lastSample = ContinuousClock.now
                rssSamples.append(((lastSample - runStart).seconds, ResidentMemory.currentMegabytes() ?? 0))
            }
            if done >= sent && (duration == 0 || (firstDone.map { (ContinuousClock.now - $0).seconds >= duration } ?? false)) { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        let end = ContinuousClock.now
        let usage = CPUUsage.now()
        pipeline.requestStop()
        try pipeline.waitUntilFinished()
        try producer.close(timeout: .seconds(5))

        // The first item's latency is outside the window, so count one item less.
        let seconds = (end - firstDone!).seconds
        let rate = Double(sent - 1) / seconds
        let cpu = (usage.seconds - usageAtFirst.seconds) / seconds / Double(ProcessInfo.processInfo.activeProcessorCount)
        print(String(format: "end to end:   %6.2f items/s  (%d items, %d dead letters)", rate, sent, pipeline.metrics.deadLettersTotal))
        // The engine-only pass excludes decoding, which the end-to-end run does on the same cores.
        print(String(format: "ratio end-to-end / engine-only: %.2f  (decoding shares the cores end to end)", rate / engineRate))
        print(String(format: "CPU utilization: %.0f%% of %d cores", cpu * 100, ProcessInfo.processInfo.activeProcessorCount))
        if !rssSamples.isEmpty {
            print("RSS MB over time: " + rssSamples.map { String(format: "%.0fs=%d", $0.0, $0.1) }.joined(separator: " "))
        }
        print("peak RSS: \(ResidentMemory.peakMegabytes() ?? 0) MB")
    }
}

/// Runs `body` on a Dispatch thread and waits for its result.
func onDispatchThread<T: Sendable>(_ body: @escaping @Sendable () -> T) -> T {
    let done = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var result: T?
    DispatchQueue(label: "ember.bench").async {
        result = body()
        done.signal()
    }
    done.wait()
    return result!
}

/// User + system CPU seconds of this process.
struct CPUUsage {
    let seconds: Double

    static func now() -> CPUUsage {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        func s(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return CPUUsage(seconds: s(usage.ru_utime) + s(usage.ru_stime))
    }
}
