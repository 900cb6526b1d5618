import EmberAlign
import EmberModel
import Foundation
import Testing

@Suite("Align training")
struct AlignTrainerTests {
    static func configuration(seed: UInt64 = 1) -> AlignConfiguration {
        var c = AlignConfiguration()
        c.layers = .mlp(hidden: 32, activation: .gelu)
        c.outputDim = 16
        c.matryoshka = [16, 8]
        c.batchSize = 32
        c.maxEpochs = 12
        c.stepsPerEpoch = 25
        c.patience = 4
        c.temperature = 0.1
        c.learningRate = 3e-3
        c.recallK = 10
        c.seed = seed
        return c
    }

    static func train(_ c: AlignConfiguration, _ problem: SyntheticSignals) throws -> AlignTrainer.Result {
        let pairs = try PairBuilder().build(problem.data, items: problem.items, sources: [.seq2item, .i2i])
        return try AlignTrainer(c).train(pairs: pairs, items: problem.items)
    }

    @Test func trainingLowersTheLossAndRaisesRecall() throws {
        let problem = SyntheticSignals(seed: 42)
        let result = try Self.train(Self.configuration(), problem)
        let losses = result.history.dropFirst().map(\.loss)
        #expect(losses.last! < losses.first! * 0.9, "losses \(losses)")
        #expect(result.recall[0] > result.history[0].recall[0] + 0.1, "validation recall \(result.history[0].recall) → \(result.recall)")
        let head = try result.head.projectionHead(matryoshka: [16, 8], name: "align", baseModel: problem.items.modelID, training: [:])
        let evaluation = ColdStartEvaluation(data: problem.data, items: problem.items, k: 10)
        #expect(evaluation.nextItemCases == 80)
        let raw = evaluation.raw(), aligned = evaluation.head(head)
        #expect(aligned[0].nextItem > raw.nextItem * 1.5, "cold next-item recall@10 raw \(raw.nextItem), head \(aligned.map(\.nextItem))")
    }

    @Test func sameSeedSameHeadByteForByte() throws {
        let problem = SyntheticSignals(seed: 42)
        var c = Self.configuration()
        c.maxEpochs = 3
        let first = try Self.train(c, problem), second = try Self.train(c, problem)
        let directory = FileManager.default.temporaryDirectory.appending(path: "align-determinism-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var files: [Data] = []
        for (i, result) in [first, second].enumerated() {
            let url = directory.appending(path: "\(i).safetensors")
            try result.head.projectionHead(matryoshka: c.matryoshka, name: "align", baseModel: "synthetic@0", training: ["seed": "\(c.seed)"]).write(to: url)
            files.append(try Data(contentsOf: url))
        }
        #expect(files[0] == files[1])
        c.seed = 2
        let other = try Self.train(c, problem)
        #expect(other.head.parameters != first.head.parameters)
    }

    @Test func headFileRoundTripsAndTheWorkerForwardMatchesTraining() throws {
        var g = SeededGenerator(seed: 4)
        let trained = TrainableHead(layers: .mlp(hidden: 12, activation: .relu), inputDim: 10, outputDim: 8, generator: &g)
        let head = try trained.projectionHead(matryoshka: [8, 4], name: "align", baseModel: "omni-small@abc", training: ["sources": "i2i"])
        let url = FileManager.default.temporaryDirectory.appending(path: "head-\(UUID()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try head.write(to: url)
        let read = try ProjectionHead(contentsOf: url)
        #expect(read.modelID == "omni-small+align@\(head.metadata.hash)")
        #expect(read.matryoshka == [8, 4] && read.metadata.training["sources"] == "i2i")
        let x = (0..<10).map { _ in Float(g.unit()) }
        let y = trained.forward(x, rows: 1).y
        #expect(read.forward(x, rows: 1) == y)
    }
}
