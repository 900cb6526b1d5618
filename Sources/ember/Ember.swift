import ArgumentParser
import EmberPipeline
import Foundation

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

    /// ArgumentParser's own `main`, after one environment fix made while the process has
    /// a single thread: remote media reaches FFmpeg only through Ember's address-pinning
    /// proxy, and FFmpeg bypasses any proxy for hosts listed in `no_proxy`, so EmberMedia
    /// refuses remote media while it is set. Many deployments set it for their own HTTP
    /// clients; Ember's other connections (librdkafka) never read it, so the worker drops it.
    static func main() async {
        unsetenv("no_proxy")
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}
