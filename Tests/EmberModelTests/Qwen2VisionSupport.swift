import EmberContract
import Foundation
@testable import EmberModel

/// Fixtures/qwen2-vl, made by Ops/reference/qwen2_vl_vision_fixtures.py (fixture version 1).
let qwen2VLFixtures = fixtures.appendingPathComponent("qwen2-vl")

/// The fixture's weights, reference tensors and configs.
struct Qwen2VLFixture {
    let weights: SafeTensorsFile
    let reference: SafeTensorsFile
    let vision: Qwen2VisionConfig
    let perceiver: PerceiverConfig
    let audioAdapter: AudioAdapterConfig

    init() throws {
        weights = try SafeTensorsFile(path: qwen2VLFixtures.appendingPathComponent("weights.safetensors").path)
        reference = try SafeTensorsFile(path: qwen2VLFixtures.appendingPathComponent("reference.safetensors").path)
        struct Configs: Decodable {
            let fixtureVersion: Int
            let visionConfig: Qwen2VisionConfig
            let perceiverConfig: PerceiverConfig
            let audioAdapterConfig: AudioAdapterConfig
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase  // as the manifest is read
        let configs = try decoder.decode(Configs.self, from: Data(contentsOf: qwen2VLFixtures.appendingPathComponent("config.json")))
        precondition(configs.fixtureVersion == 1 && reference.metadata["fixture_version"] == "1", "fixture version")
        (vision, perceiver, audioAdapter) = (configs.visionConfig, configs.perceiverConfig, configs.audioAdapterConfig)
    }

    /// Fixture image i (H, W, 3 uint8) normalized with OpenAI CLIP mean/std into (3, H, W).
    func image(_ i: Int) throws -> (values: [Float], height: Int, width: Int) {
        let shape = reference.entries["image_\(i)"]!.shape
        let (h, w) = (shape[0], shape[1])
        let pixels = try reference.bytes("image_\(i)", shape: [h, w, 3])
        let mean: [Float] = [0.48145466, 0.4578275, 0.40821073], std: [Float] = [0.26862954, 0.26130258, 0.27577711]
        var chw = [Float](repeating: 0, count: 3 * h * w)
        for c in 0..<3 {
            for p in 0..<(h * w) { chw[c * h * w + p] = (Float(pixels[p * 3 + c]) / 255 - mean[c]) / std[c] }
        }
        return (chw, h, w)
    }

    /// All three fixture images packed as one patch batch (two 56×56, one 56×84).
    func allPatches() throws -> Qwen2VisionPatches {
        var values: [Float] = [], grids: [Qwen2VisionGrid] = []
        for i in 0..<3 {
            let image = try image(i)
            let patches = try Qwen2VisionPatches(images: [image.values], height: image.height, width: image.width, config: vision)
            values += patches.values
            grids += patches.grids
        }
        return try Qwen2VisionPatches(values: values, grids: grids, config: vision)
    }
}

/// `file` rewritten as F32 with `edit` applied to its (name → (shape, values)) table, for loader error tests.
func rewrittenSafeTensors(_ file: SafeTensorsFile, _ name: String,
                          edit: (inout [String: (shape: [Int], values: [Float])]) -> Void) throws -> SafeTensorsFile {
    var table: [String: (shape: [Int], values: [Float])] = [:]
    for (tensor, entry) in file.entries where entry.dtype != "U8" && entry.dtype != "I64" {
        table[tensor] = (entry.shape, try file.floats(tensor))
    }
    edit(&table)
    let url = temporaryFile(name)
    try writeSafeTensors(table.sorted { $0.key < $1.key }.map { ($0.key, "F32", $0.value.shape, bytes($0.value.values)) }, to: url)
    return try SafeTensorsFile(path: url.path)
}
