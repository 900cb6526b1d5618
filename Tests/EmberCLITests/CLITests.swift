import Foundation
import Testing

/// Runs the built `ember` executable, which SwiftPM places next to the test bundle.
private func runEmber(_ arguments: [String]) throws -> (status: Int32, output: String) {
    let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    var directory = testBinary.deletingLastPathComponent()
    // On Linux the test product is `<bin>/EmberPackageTests.xctest`; on macOS a bundle deeper inside.
    while !FileManager.default.isExecutableFile(atPath: directory.appendingPathComponent("ember").path) {
        let parent = directory.deletingLastPathComponent()
        guard parent.path != directory.path else { throw CLIError.notBuilt }
        directory = parent
    }
    let process = Process()
    process.executableURL = directory.appendingPathComponent("ember")
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

private enum CLIError: Error { case notBuilt }

@Suite("ember command line")
struct CLITests {
    @Test("--help describes the tool")
    func help() throws {
        let (status, output) = try runEmber(["--help"])
        #expect(status == 0)
        #expect(output.contains("USAGE: ember"))
        #expect(output.contains("omni-modal embeddings"))
    }

    @Test("--version names ember and the linked C libraries")
    func version() throws {
        let (status, output) = try runEmber(["--version"])
        #expect(status == 0)
        #expect(output.contains("ember 0."))
        #expect(output.contains("librdkafka 2."))
        #expect(output.contains("libavformat"))
        #expect(output.contains("OpenBLAS"))
    }

    @Test("an unknown option fails with a usage error")
    func unknownOption() throws {
        let (status, output) = try runEmber(["--no-such-flag"])
        #expect(status != 0)
        #expect(output.contains("no-such-flag"))
    }

    @Test("ember run stops at start-up with exit 2 and the reason when the model directory is missing")
    func runWithoutModel() throws {
        let (status, output) = try runEmber(["run", "--model", "/nonexistent/omni-small", "--brokers", "127.0.0.1:1"])
        #expect(status == 2)
        #expect(output.contains("start-up failed"))
        #expect(output.contains("cannot load the model from /nonexistent/omni-small"))
        #expect(output.contains("Ops/model-fetch"), "the message says how to fix it")
    }

    @Test("a malformed configuration value stops ember run before anything starts, naming the key")
    func runWithBadConfiguration() throws {
        let (status, output) = try runEmber(["run", "--set", "pipeline.max_batch_size=lots"])
        #expect(status != 0)
        #expect(output.contains("pipeline.max_batch_size must be an integer, got 'lots'"))
    }

    @Test("ember run refuses an unknown --set key before anything starts, naming the closest key")
    func runWithUnknownKey() throws {
        let (status, output) = try runEmber(["run", "--set", "pipeline.max_bach_size=8"])
        #expect(status != 0)
        #expect(output.contains("pipeline.max_bach_size"))
        #expect(output.contains("did you mean pipeline.max_batch_size?"))
    }

    @Test("ember run's start-up log shows no secret of a librdkafka property")
    func runLogsNoSecret() throws {
        let (status, output) = try runEmber([
            "run", "--model", "/nonexistent/omni-small", "--brokers", "127.0.0.1:1",
            "--set", "kafka.properties=ssl.key.pem=-----BEGIN PRIVATE KEY-----s3cr3t",
        ])
        #expect(status == 2)
        #expect(output.contains("starting ember run"))
        #expect(output.contains("ssl.key.pem"))
        #expect(!output.contains("s3cr3t"))
    }

    @Test("ember replay needs exactly one start")
    func replayNeedsAStart() throws {
        let (status, output) = try runEmber(["replay"])
        #expect(status != 0)
        #expect(output.contains("give exactly one of --from and --from-offsets"))
    }

    @Test("ember embed with nothing to embed exits 1 with a one-line no_content reason")
    func embedNothing() throws {
        let (status, output) = try runEmber(["embed", "--title", "   ", "--model", "/nonexistent"])
        #expect(status == 1)
        #expect(output.trimmingCharacters(in: .whitespacesAndNewlines) == "ember: no_content: event has no video_uri, cover_uri or text to embed")
    }
}
