import ArgumentParser

/// `ember align …`: the recommendation-aware projection head (README "Alignment").
struct AlignCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "align",
        abstract: "Train and evaluate a recommendation-aware projection head over the fused embedding.",
        subcommands: [AlignTrain.self, AlignEvaluate.self, AlignAblation.self])
}
