import ArgumentParser
import EmberAlign
import EmberModel
import Foundation

/// `ember align ablation`: trains one head per configuration (all sources with and
/// without the hard-negative filter and Sinkhorn weights, then each source alone) and
/// prints the README's ablation table.
struct AlignAblation: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ablation",
        abstract: "Train heads with sources, the hard-negative filter and Sinkhorn weights switched, and tabulate cold-start recall.")

    @OptionGroup var input: AlignInputOptions
    @OptionGroup var training: AlignTrainingOptions
    @Option(help: "Write each head here (optional).") var outputDirectory: String?

    func run() throws {
        let (data, items) = try input.load()
        let all = try training.chosenSources(data)
        let evaluation = ColdStartEvaluation(data: data, items: items, historyLength: training.history)
        var runs: [(name: String, sources: [AlignSource], filter: Bool, sinkhorn: Bool)] = [
            ("all sources", all, true, true), ("all, no hard-negative filter", all, false, true),
            ("all, no Sinkhorn (equal weights)", all, true, false), ("all, neither", all, false, false),
        ]
        if all.count > 1 { runs += all.map { ("\($0.rawValue) only", [$0], true, false) } }
        let pairs = try training.pairs(data, items: items, sources: all)
        var rows = [("raw fused vector", [evaluation.raw()])]
        var summary: [(String, ColdStartEvaluation.Figures)] = []
        for run in runs {
            say("== \(run.name)")
            var options = training
            options.sources = run.sources.map(\.rawValue).joined(separator: ",")
            options.hardNegativeFilter = run.filter
            options.sinkhorn = run.sinkhorn
            let head = try AlignTrain.train(data: data, items: items, training: options, name: "align", pairs: pairs, log: { say("  " + $0) })
            if let outputDirectory {
                let file = run.name.replacingOccurrences(of: "[^A-Za-z0-9]+", with: "-", options: .regularExpression)
                try head.write(to: URL(fileURLWithPath: outputDirectory).appending(path: "\(file).safetensors"))
            }
            let figures = evaluation.head(head)
            rows.append((run.name, figures))
            if let f = figures.first(where: { $0.dims == 256 }) ?? figures.first { summary.append((run.name, f)) }
        }
        say(ColdStartEvaluation.Figures.table(rows, k: evaluation.k))
        let raw = evaluation.raw()
        func ratio(_ a: Double, _ b: Double) -> String { String(format: "%.2f", a / max(b, 1e-9)) + "×" }
        say("\nat \(summary.first?.1.dims ?? 0) dims against the raw vector (next item all \(String(format: "%.3f", raw.nextItemAll)), cold \(String(format: "%.3f", raw.nextItem)), ID neighbours \(String(format: "%.3f", raw.idNeighbours))):")
        for (name, f) in summary {
            say("  \(name): next item all \(ratio(f.nextItemAll, raw.nextItemAll)), cold \(ratio(f.nextItem, raw.nextItem)), ID neighbours \(ratio(f.idNeighbours, raw.idNeighbours))")
        }
    }
}
