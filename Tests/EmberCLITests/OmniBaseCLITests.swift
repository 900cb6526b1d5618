import EmberPipeline
import Foundation
import Testing

/// Where Ops/model-fetch omni-base writes: `$EMBER_OMNI_BASE_DIR`, else the cache.
private let omniBaseModel: String = {
    let environment = ProcessInfo.processInfo.environment
    if let path = environment["EMBER_OMNI_BASE_DIR"], !path.isEmpty { return path }
    let cache = environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory() + "/.cache"
    return cache + "/ember/models/omni-base"
}()

/// `ember embed` selects omni-base by model directory (`EMBER_MODEL_DIR` or `--model`).
@Suite(
    "ember embed with omni-base",
    .enabled(if: FileManager.default.fileExists(atPath: omniBaseModel + "/manifest.json"),
             "needs the omni-base model (Ops/model-fetch omni-base; Ops/test runs it)"))
struct OmniBaseCLITests {
    func record(_ output: String) throws -> EmbeddingRecord {
        let line = try #require(output.split(separator: "\n").last { $0.hasPrefix("{") }, "\(output)")
        return try JSONDecoder().decode(EmbeddingRecord.self, from: Data(line.utf8))
    }

    @Test("EMBER_MODEL_DIR and --model select omni-base; a Japanese title is nearer its English translation than another title")
    func embedSelectsOmniBase() throws {
        let japanese = try runEmber(["embed", "--title", "うちの猫が冷蔵庫を開けられるようになった", "--encoding", "f32"],
                                    environment: ["EMBER_MODEL_DIR": omniBaseModel])
        #expect(japanese.status == 0, "\(japanese.output)")
        let ja = try record(japanese.output)
        #expect(ja.model.hasPrefix("omni-base@") && ja.dim == 2304 && ja.modalities.textTokens > 3)
        let english = try runEmber(["embed", "--title", "My cat learned to open the fridge", "--encoding", "f32", "--model", omniBaseModel])
        let other = try runEmber(["embed", "--title", "Traffic jam on the highway during the holidays", "--encoding", "f32", "--model", omniBaseModel])
        let en = try record(english.output), traffic = try record(other.output)
        let dot = { (a: [Float], b: [Float]) in zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
        let (jaVector, enVector, trafficVector) = (try #require(ja.vector), try #require(en.vector), try #require(traffic.vector))
        #expect(dot(jaVector, enVector) > dot(jaVector, trafficVector) + 0.2)
    }
}
