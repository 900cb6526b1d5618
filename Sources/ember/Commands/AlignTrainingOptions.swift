import ArgumentParser
import EmberAlign
import EmberModel
import Foundation

/// `ember align train` / `ablation` training settings (defaults: `AlignConfiguration`).
struct AlignTrainingOptions: ParsableArguments {
    @Option(help: "Sources, comma-separated: id2item, seq2item, i2i, q2i (default: those with data).") var sources: String?
    @Option(help: "Head: linear or mlp.") var head = "mlp"
    @Option(help: "Hidden width of the mlp head.") var hidden = 1024
    @Option(help: "Activation of the mlp head: gelu or relu.") var activation = "gelu"
    @Option(help: "Matryoshka sizes, comma-separated; the largest is the head's output size.") var matryoshka = "512,256,128"
    @Option(help: "InfoNCE temperature.") var temperature: Float = 0.05
    @Option(help: "Pairs per batch (in-batch negatives: batch - 1 per anchor).") var batchSize = 256
    @Option(help: "AdamW learning rate.") var learningRate: Float = 1e-3
    @Option(help: "AdamW weight decay (weights only).") var weightDecay: Float = 0.01
    @Option(help: "Epochs, at most.") var epochs = 20
    @Option(help: "Steps per epoch (default: one pass over the training pairs, 10 to 400).") var steps: Int?
    @Option(help: "Epochs without a better validation recall before stopping.") var patience = 3
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Flag(inversion: .prefixedNo, help: "Leave out in-batch negatives above each source's F1 threshold.") var hardNegativeFilter = true
    @Flag(inversion: .prefixedNo, help: "Source sampling weights from Sinkhorn distances to the validation split (else equal).") var sinkhorn = true
    @Option(help: "Softmax temperature turning Sinkhorn distances into source weights.") var sinkhornTemperature = 0.05
    @Option(help: "Neighbours per item in the recommender's ID space (id2item).") var idNeighbours = 5
    @Option(help: "History items averaged to predict the next (seq2item, and the next-item evaluation).") var history = 10
    @Option(help: "Model directory for embedding q2i queries with the text tower (default: EMBER_MODEL_DIR or ~/.cache/ember/models/omni-small).") var model: String?

    func configuration() throws -> AlignConfiguration {
        var c = AlignConfiguration()
        let sizes = matryoshka.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !sizes.isEmpty, let largest = sizes.compactMap({ $0 }).max(), !sizes.contains(nil), sizes.allSatisfy({ ($0 ?? 0) >= 1 }) else {
            throw ValidationError("--matryoshka must be positive sizes, e.g. 512,256,128")
        }
        c.matryoshka = sizes.compactMap { $0 }.sorted(by: >)
        c.outputDim = largest
        switch head {
        case "linear": c.layers = .linear
        case "mlp":
            guard let activation = HeadActivation(rawValue: activation) else { throw ValidationError("--activation must be gelu or relu") }
            guard hidden >= 1 else { throw ValidationError("--hidden must be at least 1") }
            c.layers = .mlp(hidden: hidden, activation: activation)
        default: throw ValidationError("--head must be linear or mlp")
        }
        guard temperature > 0, batchSize >= 2, epochs >= 1, patience >= 1, learningRate > 0, weightDecay >= 0 else {
            throw ValidationError("--temperature and --learning-rate must be positive, --batch-size at least 2, --epochs and --patience at least 1")
        }
        c.temperature = temperature
        c.batchSize = batchSize
        c.learningRate = learningRate
        c.weightDecay = weightDecay
        c.maxEpochs = epochs
        c.stepsPerEpoch = steps
        c.patience = patience
        c.seed = seed
        c.hardNegativeFilter = hardNegativeFilter
        c.sinkhorn = sinkhorn
        c.sinkhornTemperature = sinkhornTemperature
        return c
    }

    /// The sources asked for, or every source the data has signals for.
    func chosenSources(_ data: AlignData) throws -> [AlignSource] {
        if let sources {
            return try sources.split(separator: ",").map {
                guard let s = AlignSource(rawValue: $0.trimmingCharacters(in: .whitespaces)) else {
                    throw ValidationError("unknown source \($0): one of \(AlignSource.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                return s
            }
        }
        return AlignSource.allCases.filter {
            switch $0 {
            case .id2item: !data.idVectors.isEmpty
            case .seq2item: !data.sequences.isEmpty
            case .i2i: !data.coEngagements.isEmpty
            case .q2i: !data.queries.isEmpty
            }
        }
    }

    func pairs(_ data: AlignData, items: ItemVectors, sources: [AlignSource]) throws -> PairBuilder.Result {
        var builder = PairBuilder()
        builder.idNeighbours = idNeighbours
        builder.historyLength = history
        let result = try builder.build(data, items: items, sources: sources) { queries in
            try QueryEmbedder(directory: model ?? ModelDirectory.resolved(), expectedModel: items.modelID).embed(queries)
        }
        say("pairs (train/validation): " + sources.sorted().map { "\($0.rawValue) \(result.train[$0]?.count ?? 0)/\(result.validation[$0]?.count ?? 0)" }.joined(separator: ", ")
            + (result.missingItems > 0 ? "; \(result.missingItems) signals name items without a record" : "")
            + (result.coldRefused > 0 ? "; \(result.coldRefused) signals name cold items and were refused" : ""))
        return result
    }
}

/// q2i queries through the model's text tower: the fused vector of a text-only item.
struct QueryEmbedder {
    let engine: EmbeddingEngine

    init(directory: String, expectedModel: String) throws {
        do {
            engine = try EmbeddingEngine(modelDirectory: URL(fileURLWithPath: directory))
        } catch {
            throw ValidationError("q2i needs the model to embed queries; cannot load \(directory): \(error)")
        }
        guard ModelIdentity.sameWeights(engine.modelID, expectedModel) else {
            throw ValidationError("q2i: the model at \(directory) is \(engine.modelID), the records are \(expectedModel)")
        }
    }

    func embed(_ queries: [String]) throws -> [[Float]] {
        try queries.map { try engine.embed([ItemInput(text: $0)])[0].vector }
    }
}
