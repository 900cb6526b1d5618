import ArgumentParser

/// `ember bench …`: benchmarks that compare Ember with a reference in one run and
/// report ratios. Nothing here is a pass/fail test.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure Ember against references on this machine.",
        subcommands: [BenchBLAS.self, BenchKafka.self, BenchDecode.self, BenchEngine.self, BenchFusion.self, BenchModels.self, BenchPipeline.self, BenchSemantic.self])
}
