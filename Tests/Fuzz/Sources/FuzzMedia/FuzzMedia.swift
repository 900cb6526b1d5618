import EmberMedia
import FuzzSupport

let scratch = ScratchFile(name: "clip")

/// The worker's decoder with its default limits (tighter time budget, so a slow
/// input is a timeout rather than a stalled fuzzer), on files under the scratch root.
let decoder: MediaDecoder = {
    FFmpegLogLevel.current = .quiet
    var configuration = MediaConfiguration()
    configuration.uriPolicy = URIPolicy(mediaRoot: scratch.directory.path)
    configuration.totalTimeoutSeconds = 5
    configuration.maxFrames = 4
    configuration.maxAudioSeconds = 5
    return MediaDecoder(configuration: configuration)
}()

/// Mutated clips and images: open, probe, keyframes, audio and cover decoding must
/// give media or a typed failure.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMedia(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    guard let start else { return 0 }
    scratch.write(fuzzInput(start, count))
    _ = try? decoder.decode(videoURI: scratch.path, coverURI: scratch.path)
    return 0
}

@main enum Main {
    static func main() { runFuzzer(fuzzMedia) }
}
