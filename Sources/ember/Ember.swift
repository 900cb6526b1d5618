import ArgumentParser
import EmberPipeline

@main
struct Ember: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ember",
        abstract: "Turns newly uploaded short videos into omni-modal embeddings for recommendation.",
        discussion: """
            Ember consumes video-upload events from Kafka, decodes keyframes and audio with \
            FFmpeg, embeds vision, text and audio on the CPU with OpenBLAS, and produces the \
            vectors to an output topic. See README.md for the configuration and message formats.
            """,
        version: BuildInfo.summary,
        subcommands: [Run.self, Replay.self, Embed.self, Produce.self, Inspect.self, CodebookCommand.self, AlignCommand.self, Bench.self, MediaCheck.self])
}
