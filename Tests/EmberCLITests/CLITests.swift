import Foundation
import Testing

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
