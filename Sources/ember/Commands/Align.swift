import ArgumentParser
import Foundation

/// `ember align …`: the recommendation-aware projection head (README "Alignment").
struct AlignCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "align",
        abstract: "Train and evaluate a recommendation-aware projection head over the fused embedding.",
        subcommands: [AlignTrain.self, AlignEvaluate.self, AlignAblation.self])
}

/// A line on stdout, flushed at once: training runs for minutes and its progress lines
/// should reach a pipe or a log file as they happen.
func say(_ line: String) {
    print(line)
    fflush(nil)
}
