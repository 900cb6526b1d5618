import EmberMedia
import Foundation
import Testing
@testable import EmberModel

/// `model.precision`: how the setting resolves against the CPU, and what bf16 does to the
/// vectors of real media (ffmpeg-rendered images, espeak-ng speech through EmberMedia).
@Suite("Compute precision")
struct PrecisionTests {
    @Test("auto is bf16 only with AVX512-BF16; fp32 is always fp32; bf16 without the feature is an error naming the setting")
    func resolution() throws {
        #expect(try PrecisionSetting.auto.resolved(bf16Available: true) == .bf16)
        #expect(try PrecisionSetting.auto.resolved(bf16Available: false) == .fp32)
        #expect(try PrecisionSetting.fp32.resolved(bf16Available: true) == .fp32)
        #expect(try PrecisionSetting.fp32.resolved(bf16Available: false) == .fp32)
        #expect(try PrecisionSetting.bf16.resolved(bf16Available: true) == .bf16)
        #expect(throws: ModelError.invalidConfig(
            key: "precision", reason: "bf16 needs a CPU with AVX512-BF16, which this one lacks; use auto or fp32")) {
            try PrecisionSetting.bf16.resolved(bf16Available: false)
        }
        #expect(PrecisionSetting.allCases.map(\.rawValue) == ["auto", "fp32", "bf16"])
    }

    @Test("bf16 on real media: every tower within cosine 0.999 of fp32, the item too; the model id says +bf16",
          .enabled(if: ComputePrecision.bf16Available, "needs AVX512-BF16"))
    func realMedia() throws {
        let fp32 = try loadRealEngine()
        let bf16 = try EmbeddingEngine(modelDirectory: .defaultModelDirectory, threads: 2, precision: .bf16)
        #expect(fp32.precision == .fp32 && !fp32.modelID.hasSuffix("+bf16"))
        #expect(bf16.modelID == fp32.modelID + "+bf16")

        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let inputs = try decoder.decode(RealInputs.self, from: Data(contentsOf: realFixtures.appendingPathComponent("inputs.json")))
        let folder = try renderMediaFiles(inputs)
        defer { try? FileManager.default.removeItem(at: folder) }
        let frontEnd = try productionFrontEnd(fp32, root: folder)
        let speech = try frontEnd.prepare(videoURI: folder.appendingPathComponent("speech.wav").path, coverURI: nil)
        var items: [ItemInput] = []
        for (i, sentence) in inputs.sentences.enumerated() {
            let image = inputs.images.indices.contains(i) ? folder.appendingPathComponent("image-\(i).png").path : nil
            let cover = try image.map { try frontEnd.prepare(videoURI: nil, coverURI: $0) }
            items.append(ItemInput(text: sentence, frames: cover?.frames, logMel: i == 0 ? speech.logMel : nil))
        }
        let exact = try fp32.embed(items), rounded = try bf16.embed(items)
        var towersSeen = Set<Modality>()
        for (i, (a, b)) in zip(exact, rounded).enumerated() {
            #expect(Set(a.towers.keys) == Set(b.towers.keys))
            for (tower, vector) in a.towers {
                towersSeen.insert(tower)
                let cosine = cosineSimilarity(vector, b.towers[tower]!)
                #expect(cosine >= 0.999, "item \(i) \(tower): cosine \(cosine)")
                // Every tower computes in bf16 (vision: its 1×1 convolutions), so none is bit-equal to fp32.
                #expect(vector != b.towers[tower]!, "item \(i) \(tower): bf16 differs from fp32")
            }
            #expect(cosineSimilarity(a.vector, b.vector) >= 0.999, "item \(i)")
            #expect(a.modalities == b.modalities)
        }
        #expect(towersSeen == [.text, .vision, .audio])
        // A fixed precision is reproducible (what byte-identical replays rest on): the same
        // item embedded on its own again gives the same bits.
        #expect(try bf16.embed([items[0]])[0].vector == (try bf16.embed([items[0]])[0].vector))
    }
}

private func cosineSimilarity(_ a: [Float], _ b: [Float]) -> Double {
    var dot = 0.0, na = 0.0, nb = 0.0
    for (x, y) in zip(a, b) {
        dot += Double(x) * Double(y)
        na += Double(x) * Double(x)
        nb += Double(y) * Double(y)
    }
    return dot / (na.squareRoot() * nb.squareRoot())
}
