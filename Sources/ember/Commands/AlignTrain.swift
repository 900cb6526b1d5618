import ArgumentParser
import EmberAlign
import EmberModel
import Foundation

/// `ember align train`: trains a head and writes it; prints the cold-start figures when
/// the data has evaluation files.
struct AlignTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a projection head on recommendation signals (README \"Alignment\").",
        discussion: """
            Base embeddings: --embeddings (Ember JSONL records) or --topic (records after ember replay). \
            The head file is safetensors with metadata (base model, sources, sizes, validation \
            figures, seed, hash); the worker applies it with model.head.
            """)

    @OptionGroup var input: AlignInputOptions
    @OptionGroup var training: AlignTrainingOptions
    @Option(help: "Head name in the model id (omni-small+NAME@hash).") var name = "align"
    @Option(name: .shortAndLong, help: "Head file to write (.safetensors).") var output: String

    func validate() throws {
        guard name.range(of: "^[A-Za-z0-9_.-]{1,64}$", options: .regularExpression) != nil else {
            throw ValidationError("--name must be 1-64 letters, digits, '_', '.' or '-'")
        }
    }

    func run() throws {
        let (data, items) = try input.load()
        let head = try Self.train(data: data, items: items, training: training, name: name, log: say)
        try head.write(to: URL(fileURLWithPath: output))
        say("wrote \(output): \(head.modelID), \(head.layers.specification) \(head.inputDim) → \(head.outputDim), sizes \(head.matryoshka.map(String.init).joined(separator: "/"))")
        let evaluation = ColdStartEvaluation(data: data, items: items, historyLength: training.history)
        guard evaluation.nextItemCases + evaluation.neighbourCases > 0 else { return }
        say("cold-start items (\(evaluation.nextItemCases) next-item cases, \(evaluation.neighbourCases) cold items with ID neighbours):")
        say(ColdStartEvaluation.Figures.table([("raw", [evaluation.raw()]), (name, evaluation.head(head))], k: evaluation.k))
    }

    /// Trains on `pairs` (built once by the caller: an ablation reuses them, q2i's query
    /// embeddings included) restricted to the sources `training` chooses.
    static func train(
        data: AlignData, items: ItemVectors, training: AlignTrainingOptions, name: String, pairs built: PairBuilder.Result? = nil,
        log: (String) -> Void
    ) throws -> ProjectionHead {
        let configuration = try training.configuration()
        let sources = try training.chosenSources(data)
        guard !sources.isEmpty else { throw ValidationError("no source has signals in the data directory") }
        var pairs = try built ?? training.pairs(data, items: items, sources: sources)
        pairs.train = pairs.train.filter { sources.contains($0.key) }
        pairs.validation = pairs.validation.filter { sources.contains($0.key) }
        let started = ContinuousClock.now
        let result = try AlignTrainer(configuration).train(pairs: pairs, items: items, progress: log)
        func list<T>(_ values: [T], _ show: (T) -> String) -> String { values.map(show).joined(separator: ",") }
        let metadata: [String: String] = [
            "sources": list(result.sources, \.rawValue),
            "source_weights": list(result.weights) { String(format: "%.6f", $0) },
            "sinkhorn": "\(configuration.sinkhorn)",
            "sinkhorn_distances": list(result.distances) { String(format: "%.6f", $0) },
            "hard_negative_filter": "\(configuration.hardNegativeFilter)",
            "thresholds": list(result.thresholds) { $0.map { String(format: "%.4f", $0) } ?? "none" },
            "seed": "\(configuration.seed)", "temperature": "\(configuration.temperature)",
            "batch_size": "\(configuration.batchSize)", "learning_rate": "\(configuration.learningRate)",
            "weight_decay": "\(configuration.weightDecay)",
            "epochs": "\(result.bestEpoch) of \(result.history.count - 1)",
            "train_pairs": list(result.sources) { "\(pairs.train[$0]?.count ?? 0)" },
            "validation": "recall@\(configuration.recallK) " + zip(configuration.matryoshka, result.recall).map { "\($0):\(String(format: "%.4f", $1))" }.joined(separator: ","),
            "validation_by_source": zip(result.sources, result.recallBySource).map { "\($0.rawValue):\(String(format: "%.4f", $1))" }.joined(separator: ","),
        ]
        log("trained in \((ContinuousClock.now - started).formatted(.units(allowed: [.seconds, .milliseconds], width: .narrow))); best epoch \(result.bestEpoch), validation recall@\(configuration.recallK) " + zip(configuration.matryoshka, result.recall).map { "\($0): \(String(format: "%.3f", $1))" }.joined(separator: ", "))
        return try result.head.projectionHead(matryoshka: configuration.matryoshka, name: name, baseModel: items.modelID, training: metadata)
    }
}
