import ArgumentParser

/// `ember codebook …`: semantic-ID codebooks.
struct CodebookCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "codebook",
        abstract: "Semantic-ID codebooks (residual k-means over output embeddings).",
        subcommands: [CodebookTrain.self])
}
