import ArgumentParser
import EmberModel
import Foundation

/// `ember codebook train`: residual k-means over output embeddings read from a topic
/// (e.g. after `ember replay`) or a file; writes the codebook and prints its quality.
struct CodebookTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a semantic-ID codebook from output records (a topic or a file).",
        discussion: """
            Input: --topic (output records from the beginning of the topic to its end when \
            reading starts; duplicates of an item keep the last), or --file with Ember JSONL \
            records (one per line, as `ember inspect --json` prints before its summary line) or a raw little-endian \
            float32 matrix (--dim and --model-id then say what it is).
            """)

    @Option(help: "Read output records from this topic.") var topic: String?
    @Option(help: "Kafka bootstrap servers (default: EMBER_KAFKA_BROKERS or 127.0.0.1:9092).") var brokers: String?
    @Option(name: .customLong("property"), help: "librdkafka property name=value for the reader (repeatable).") var properties: [String] = []
    @Option(help: "Read records (JSONL) or a float32 matrix from this file.") var file: String?
    @Option(help: "Row size of a float32 matrix file.") var dim: Int?
    @Option(help: "Model id the vectors of a float32 matrix file came from.") var modelID: String?
    @Option(help: "Use at most this many vectors.") var limit: Int?
    @Option(help: "Stop reading a topic after this many seconds.") var maxSeconds: Double?

    @Option(help: "Codebook levels.") var levels = 3
    @Option(help: "Codes per level.") var codes = 256
    @Option(help: "Lloyd iterations per level, at most.") var iterations = 20
    @Option(help: "Random seed: the same seed and data give the same codebook, byte for byte.") var seed: UInt64 = 0
    @Flag(help: "Balanced assignment while training: each code takes at most ⌈n / K⌉ vectors.") var balanced = false
    @Option(help: "OpenBLAS threads.") var threads = 2
    @Option(name: .shortAndLong, help: "Codebook file to write (.safetensors).") var output: String

    func validate() throws {
        guard (topic == nil) != (file == nil) else { throw ValidationError("give exactly one of --topic and --file") }
        guard (1...8).contains(levels) else { throw ValidationError("--levels must be 1 to 8") }
        guard (2...65_536).contains(codes) else { throw ValidationError("--codes must be 2 to 65536") }
        guard (1...1000).contains(iterations) else { throw ValidationError("--iterations must be 1 to 1000") }
        guard (1...256).contains(threads) else { throw ValidationError("--threads must be 1 to 256") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
    }

    func run() throws {
        BLASThreads.count = threads
        let vectors = try read()
        guard let modelID = vectors.modelID, vectors.count > 0 else { throw ValidationError("no vectors to train on") }
        print("training \(levels) × \(codes) codes on \(vectors.count) vectors of \(vectors.dim) dims for \(modelID)"
            + (vectors.duplicates > 0 ? " (\(vectors.duplicates) repeated records of an item: the last kept)" : ""))
        let started = ContinuousClock.now
        let trainer = ResidualKMeans(.init(sizes: Array(repeating: codes, count: levels), maxIterations: iterations, seed: seed, balanced: balanced))
        let codebook = try trainer.train(vectors.values, count: vectors.count, dim: vectors.dim, modelID: modelID) { print("  " + $0) }
        let elapsed = ContinuousClock.now - started
        try codebook.write(to: URL(fileURLWithPath: output))
        let s = codebook.statistics
        print("wrote \(output) in \(elapsed.formatted(.units(allowed: [.seconds, .milliseconds], width: .narrow))) (\(threads) BLAS threads)")
        print("reconstruction error: mse \(String(format: "%.5f", s.meanSquaredError)), relative \(String(format: "%.4f", s.relativeError))")
        print("perplexity per level: " + s.perplexity.enumerated().map { "L\($0.offset) \(String(format: "%.1f", $0.element))/\(codes)" }.joined(separator: ", "))
        print("full-code collisions: \(String(format: "%.2f", s.collisionShare * 100))% of items share their semantic ID with another")
    }

    private func read() throws -> TrainingVectors {
        if let topic {
            let environment = ProcessInfo.processInfo.environment
            let brokers = brokers ?? environment["EMBER_KAFKA_BROKERS"] ?? "127.0.0.1:9092"
            var parsed: [String: String] = [:]
            for property in properties {
                guard let eq = property.firstIndex(of: "=") else { throw ValidationError("--property \(property) is not name=value") }
                parsed[String(property[..<eq])] = String(property[property.index(after: eq)...])
            }
            return try TrainingVectors.topic(topic, brokers: brokers, properties: parsed, limit: limit, maxSeconds: maxSeconds)
        }
        let url = URL(fileURLWithPath: file!)
        let head = try FileHandle(forReadingFrom: url).read(upToCount: 64) ?? Data()
        if head.first(where: { !($0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09) }) == UInt8(ascii: "{") && dim == nil {
            return try TrainingVectors.jsonLines(url, limit: limit)
        }
        guard let dim, let modelID else { throw ValidationError("a float32 matrix file needs --dim and --model-id") }
        return try TrainingVectors.float32Matrix(url, dim: dim, modelID: modelID, limit: limit)
    }
}
