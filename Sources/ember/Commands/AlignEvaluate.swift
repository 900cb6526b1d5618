import ArgumentParser
import EmberAlign
import EmberModel
import Foundation

/// `ember align evaluate`: cold-start recall of the raw fused vector and of heads.
struct AlignEvaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Cold-start recall@k (next item, ID neighbours) of the raw fused vector and of heads at each Matryoshka size.")

    @OptionGroup var input: AlignInputOptions
    @Option(name: .customLong("head"), help: "Head file to evaluate (repeatable).") var heads: [String] = []
    @Option(help: "Recall cut-off.") var k = 50
    @Option(help: "History items averaged for the next-item query.") var history = 10

    func run() throws {
        let (data, items) = try input.load()
        let evaluation = ColdStartEvaluation(data: data, items: items, k: k, historyLength: history)
        guard evaluation.nextItemCases + evaluation.neighbourCases > 0 else {
            throw ValidationError("no evaluation cases: eval/next_item.jsonl and eval/id_neighbours.jsonl name no cold item with a record")
        }
        var rows = [("raw", [evaluation.raw()])]
        for path in heads {
            let head: ProjectionHead
            do { head = try ProjectionHead(contentsOf: URL(fileURLWithPath: path)) } catch { throw ValidationError("\(error)") }
            guard ModelIdentity.sameWeights(head.metadata.baseModel, items.modelID), head.inputDim == items.dim else {
                throw ValidationError("\(path) is a head for \(head.metadata.baseModel) (\(head.inputDim) dims), the records are \(items.modelID) (\(items.dim))")
            }
            rows.append((head.modelID, evaluation.head(head)))
        }
        say("\(evaluation.nextItemCases) next-item cases, \(evaluation.neighbourCases) cold items with ID neighbours")
        say(ColdStartEvaluation.Figures.table(rows, k: k))
    }
}
