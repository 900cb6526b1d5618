import EmberModel
import EmberPipeline
import Foundation
import Testing

/// `ember codebook train` from files: Ember JSONL records and a raw float32 matrix.
@Suite("ember codebook train")
struct CodebookCLITests {
    /// 60 unit vectors of 32 dims around 6 directions.
    private func vectors() -> [[Float]] {
        var generator = SeededGenerator(seed: 3)
        return (0..<60).map { i in
            let raw = (0..<32).map { d in (d % 6 == i % 6 ? 1 : 0) + Float(generator.unit() - 0.5) * 0.4 }
            let norm = raw.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return raw.map { $0 / norm }
        }
    }

    @Test("JSONL records and the same vectors as a float32 matrix give the same codebook; repeated items count once")
    func trainFromFiles() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ember-cli-codebook-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let vectors = vectors()
        func record(_ i: Int, _ v: [Float]) throws -> String {
            let r = EmbeddingRecord(
                itemID: "item-\(i)", model: "omni-small@abc", vector: v, encoding: .f32,
                modalities: .init(visionFrames: 0, textTokens: 3, audioSeconds: 0), source: nil, uploadedAt: nil, embeddedAt: Date())
            return String(decoding: try r.jsonBytes(), as: UTF8.self)
        }
        // item-0 twice: first with a wrong vector, then the right one (the last is kept).
        var lines = [try record(0, vectors[1])]
        for (i, v) in vectors.enumerated() { lines.append(try record(i, v)) }
        let jsonl = directory.appendingPathComponent("records.jsonl")
        try lines.joined(separator: "\n").write(to: jsonl, atomically: true, encoding: .utf8)
        let matrix = directory.appendingPathComponent("vectors.f32")
        try Data(vectors.flatMap { $0 }.withUnsafeBytes { Array($0) }).write(to: matrix)

        let fromRecords = try runEmber(["codebook", "train", "--file", jsonl.path, "--levels", "2", "--codes", "6", "--seed", "4",
                                     "-o", directory.appendingPathComponent("a.safetensors").path])
        #expect(fromRecords.status == 0, "\(fromRecords.output)")
        #expect(fromRecords.output.contains("training 2 × 6 codes on 60 vectors of 32 dims for omni-small@abc (1 repeated records of an item: the last kept)"))
        #expect(fromRecords.output.contains("perplexity per level: L0 "))
        #expect(fromRecords.output.contains("full-code collisions: "))
        let fromMatrix = try runEmber(["codebook", "train", "--file", matrix.path, "--dim", "32", "--model-id", "omni-small@abc",
                                    "--levels", "2", "--codes", "6", "--seed", "4", "-o", directory.appendingPathComponent("b.safetensors").path])
        #expect(fromMatrix.status == 0, "\(fromMatrix.output)")
        let a = try Data(contentsOf: directory.appendingPathComponent("a.safetensors"))
        #expect(a == (try Data(contentsOf: directory.appendingPathComponent("b.safetensors"))))
        let codebook = try Codebook(contentsOf: directory.appendingPathComponent("a.safetensors"))
        #expect(codebook.modelID == "omni-small@abc" && codebook.sizes == [6, 6] && codebook.statistics.items == 60)
        #expect(codebook.statistics.perplexity[0] > 5.5, "six directions, six codes: \(codebook.statistics.perplexity)")

        // Errors say what is wrong.
        let noDim = try runEmber(["codebook", "train", "--file", matrix.path, "-o", directory.appendingPathComponent("c").path])
        #expect(noDim.status != 0 && noDim.output.contains("a float32 matrix file needs --dim and --model-id"))
        let tooFew = try runEmber(["codebook", "train", "--file", jsonl.path, "-o", directory.appendingPathComponent("c").path])
        #expect(tooFew.status != 0 && tooFew.output.contains("60 vectors are fewer than the 256 codes of a level"), "\(tooFew.output)")
        let both = try runEmber(["codebook", "train", "--file", jsonl.path, "--topic", "t", "-o", "x"])
        #expect(both.status != 0 && both.output.contains("give exactly one of --topic and --file"))
    }
}
