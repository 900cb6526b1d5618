import EmberPipeline
import Foundation
import Testing

/// Where `Ops/model-fetch qwen2vl-tiny` writes the tiny VLM-fusion models.
private let qwen2vlRoot: String = {
    let environment = ProcessInfo.processInfo.environment
    if let path = environment["EMBER_QWEN2VL_TINY_ROOT"], !path.isEmpty { return path }
    let cache = environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory() + "/.cache"
    return cache + "/ember/models"
}()

/// `ember embed` with converted tiny VLM-fusion model directories (GME-style and SAIL-style),
/// selected by `--model` or `EMBER_MODEL_DIR`, on ffmpeg-made media.
@Suite(
    "ember embed with a VLM-fusion model",
    .enabled(if: FileManager.default.fileExists(atPath: qwen2vlRoot + "/qwen2vl-tiny-sail/manifest.json"),
             "needs the tiny VLM-fusion models (Ops/model-fetch qwen2vl-tiny; Ops/test runs it)"))
struct VLMFusionCLITests {
    func record(_ output: String) throws -> EmbeddingRecord {
        let line = try #require(output.split(separator: "\n").last { $0.hasPrefix("{") }, "\(output)")
        return try JSONDecoder().decode(EmbeddingRecord.self, from: Data(line.utf8))
    }

    /// A 3 s clip with moving pictures and a tone, made by the ffmpeg CLI.
    func clip() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("vlm-fusion-\(UUID().uuidString.prefix(8)).mp4")
        let ffmpeg = try runProgram(URL(fileURLWithPath: "/usr/bin/ffmpeg"), [
            "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10:duration=3",
            "-f", "lavfi", "-i", "sine=frequency=440:duration=3", "-g", "10", "-c:v", "libx264", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-shortest", url.path,
        ])
        #expect(ffmpeg.status == 0, "\(ffmpeg.output)")
        return url
    }

    @Test("SAIL-style: video (frames + audio) and title → a 32-d record of sizes 64/32/16, every modality counted")
    func sailVideo() throws {
        let video = try clip()
        defer { try? FileManager.default.removeItem(at: video) }
        let model = qwen2vlRoot + "/qwen2vl-tiny-sail"
        let run = try runEmber(["embed", "--model", model, "--video", video.path, "--title", "A cat opens the fridge", "--tags", "pets,cats",
                                "--encoding", "f32"])
        #expect(run.status == 0, "\(run.output)")
        let r = try record(run.output)
        #expect(r.model.hasPrefix("qwen2vl-tiny-sail@") && r.dim == 32 && r.matryoshka == 32, "\(r.model) \(r.dim) \(String(describing: r.matryoshka))")
        let vector = try #require(r.vector)
        #expect(vector.count == 32 && abs(vector.reduce(0) { $0 + $1 * $1 } - 1) < 1e-4)
        #expect(r.modalities.visionFrames >= 1 && abs(r.modalities.audioSeconds - 3) < 0.2 && r.modalities.textTokens >= 6, "\(r.modalities)")
        // The same item again is the same vector; without the video it is another one.
        let again = try record(try runEmber(["embed", "--model", model, "--video", video.path, "--title", "A cat opens the fridge",
                                             "--tags", "pets,cats", "--encoding", "f32"]).output)
        #expect(again.vector == r.vector)
        let titleOnly = try record(try runEmber(["embed", "--model", model, "--title", "A cat opens the fridge", "--tags", "pets,cats",
                                                 "--encoding", "f32"]).output)
        #expect(titleOnly.modalities.visionFrames == 0 && titleOnly.modalities.audioSeconds == 0 && titleOnly.vector != r.vector)
    }

    @Test("GME-style selected by EMBER_MODEL_DIR: a 64-d record; a broken video exits 1 with media_invalid")
    func gmeByEnvironment() throws {
        let environment = ["EMBER_MODEL_DIR": qwen2vlRoot + "/qwen2vl-tiny"]
        let run = try runEmber(["embed", "--title", "猫が冷蔵庫を開ける 🐱", "--author", "someone"], environment: environment)
        #expect(run.status == 0, "\(run.output)")
        let r = try record(run.output)
        #expect(r.model.hasPrefix("qwen2vl-tiny@") && r.dim == 64 && r.matryoshka == 64 && r.modalities.textTokens > 3)
        let broken = FileManager.default.temporaryDirectory.appendingPathComponent("vlm-broken-\(UUID().uuidString.prefix(8)).mp4")
        try Data("not a video".utf8).write(to: broken)
        defer { try? FileManager.default.removeItem(at: broken) }
        let bad = try runEmber(["embed", "--video", broken.path], environment: environment)
        #expect(bad.status == 1 && bad.output.contains("ember: media_invalid:"), "\(bad.output)")
    }

    @Test("Ops/convert-qwen2vl turns the tiny Hugging Face checkpoint into the same model ember embed reads; bad options are refused")
    func converter() throws {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let converter = repository.appendingPathComponent("Ops/convert-qwen2vl")
        let source = qwen2vlRoot + "/qwen2vl-tiny/reference/hf"
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("vlm-converted-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: out) }
        let converted = try runProgram(converter, [source, out.path, "--id", "qwen2vl-tiny", "--image-size", "56", "--order", "vision,text",
                                                   "--matryoshka", "64,32", "--instruction", "Represent the user's input."])
        #expect(converted.status == 0, "\(converted.output)")
        let original = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: qwen2vlRoot + "/qwen2vl-tiny/manifest.json"))) as? NSDictionary
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("manifest.json"))) as? NSDictionary
        #expect(manifest == original, "the CLI writes the manifest the generator's conversion wrote")
        let a = try record(try runEmber(["embed", "--model", out.path, "--title", "a cat", "--encoding", "f32"]).output)
        let b = try record(try runEmber(["embed", "--model", qwen2vlRoot + "/qwen2vl-tiny", "--title", "a cat", "--encoding", "f32"]).output)
        #expect(a.model == b.model && a.vector == b.vector)
        let bad = try runProgram(converter, [source, out.path + "-bad", "--image-size", "50"])
        #expect(bad.status != 0 && bad.output.contains("multiple of patch_size"), "\(bad.output)")
    }
}
