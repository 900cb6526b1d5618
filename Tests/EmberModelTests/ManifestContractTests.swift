import EmberMedia
import Foundation
import Testing
@testable import EmberModel

/// Changing a tower's preprocessing is a manifest change only: the same code, given a
/// manifest with another size and mean, produces the correspondingly different tensor,
/// and the model embeds it.
@Suite("Manifest is the model contract")
struct ManifestContractTests {
    /// The tiny model with `edit` applied to its manifest (weights and vocabulary linked).
    func editedTinyModel(_ edit: (inout [String: Any]) -> Void) throws -> URL {
        let directory = temporaryFile("contract-model")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for name in ["text.safetensors", "vision.safetensors", "audio.safetensors", "vocab.txt"] {
            try FileManager.default.createSymbolicLink(at: directory.appendingPathComponent(name), withDestinationURL: tinyModel.appendingPathComponent(name))
        }
        let data = try Data(contentsOf: tinyModel.appendingPathComponent("manifest.json"))
        var manifest = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        edit(&manifest)
        try JSONSerialization.data(withJSONObject: manifest).write(to: directory.appendingPathComponent("manifest.json"))
        return directory
    }

    /// A solid-colour PNG cover, written by the ffmpeg CLI.
    func cover(in directory: URL) throws -> String {
        let path = directory.appendingPathComponent("cover.png").path
        try run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=0xC86400:s=96x64", "-frames:v", "1", "-pix_fmt", "rgb24", path])
        return path
    }

    @Test("a manifest with size 40 and mean 0.25 gives 3×40×40 frames normalized with 0.25; the engine embeds them")
    func preprocessingFromManifest() throws {
        let directory = try editedTinyModel { manifest in
            var towers = manifest["towers"] as! [String: Any]
            var vision = towers["vision"] as! [String: Any]
            vision["preprocessing"] = [
                "size": 40, "resize": "center_crop", "resize_shorter_side": 48, "interpolation": "bilinear",
                "mean": [0.25, 0.25, 0.25], "std": [0.5, 0.5, 0.5],
            ] as [String: Any]
            towers["vision"] = vision
            manifest["towers"] = towers
        }
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = try cover(in: directory)
        var media = MediaConfiguration()
        media.uriPolicy = URIPolicy(mediaRoot: directory.path)

        let frontEnds = try [tinyModel, directory].map { model in
            let towers = try ModelManifest.load(directory: model).towers
            return try MediaFrontEnd(vision: towers.vision?.preprocessing, audio: towers.audio?.preprocessing, media: media)
        }
        let original = try #require(try frontEnds[0].prepare(videoURI: nil, coverURI: path).frames)
        let changed = try #require(try frontEnds[1].prepare(videoURI: nil, coverURI: path).frames)
        #expect(original.size == 33 && original.values.count == 3 * 33 * 33)
        #expect(changed.size == 40 && changed.values.count == 3 * 40 * 40)
        // Colour 0xC86400 = (200, 100, 0): each channel plane is (v / 255 − mean) / std.
        for (channel, value) in [200, 100, 0].enumerated() {
            let plane = 40 * 40
            let expected = (Float(value) / 255 - 0.25) / 0.5
            let got = changed.values[(channel * plane)..<((channel + 1) * plane)]
            #expect(got.allSatisfy { abs($0 - expected) < 0.01 }, "channel \(channel): \(got.first ?? .nan) vs \(expected)")
            #expect(abs(original.values[channel * 33 * 33] - (Float(value) / 255 - 0.5) / 0.5) < 0.01)
        }
        let engine = try EmbeddingEngine(modelDirectory: directory)
        let embedded = try engine.embed([ItemInput(frames: changed)])[0]
        #expect(embedded.modalities.visionFrames == 1 && embedded.vector.count == 1344)
        // The engine holds frames to the manifest's size: the old 33² frames no longer fit.
        #expect(throws: ModelError.self) { try engine.embed([ItemInput(frames: original)]) }
    }
}
