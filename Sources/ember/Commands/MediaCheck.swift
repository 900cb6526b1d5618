import ArgumentParser
import EmberMedia
import EmberPipeline
import Foundation

/// `ember media-check`: opens and decodes media URIs exactly as the worker would, with
/// the worker's configuration (file, EMBER_* variables, --set), and prints one line per
/// URI: `ok` or the dead-letter class, then the URI and the reason. Hidden: a tool for
/// Ops/ssrf-net and for an operator checking what the media policy lets through.
struct MediaCheck: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "media-check", abstract: "Decode media URIs with the worker's media settings; print the outcome of each.",
        shouldDisplay: false)

    @OptionGroup var options: WorkerOptions
    @Flag(help: "Decode each URI as a cover image instead of a video.") var image = false
    @Argument(help: "Media URIs.") var uris: [String]

    func run() async throws {
        let configuration = try await options.loadConfiguration()
        let decoder = MediaDecoder(configuration: configuration.media)
        for uri in uris {
            do {
                if image {
                    let picture = try decoder.decodeImage(uri: uri)
                    print("ok\t\(uri)\t\(picture.width)x\(picture.height)")
                } else {
                    let media = try decoder.decodeVideo(uri: uri)
                    print("ok\t\(uri)\t\(media.frames.count) frames, \(media.audio.count) audio samples")
                }
            } catch {
                print("\(error.failureClass.rawValue)\t\(uri)\t\(error.message)")
            }
        }
    }
}
