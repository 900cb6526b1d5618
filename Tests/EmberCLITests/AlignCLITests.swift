import EmberModel
import EmberPipeline
import Foundation
import Testing

/// `ember align train` and `evaluate` from files: signal files in the agreed formats and
/// Ember JSONL records (a small structured catalog: the topic, which users follow, is a
/// weak direction of the vectors; an unrelated style direction dominates them).
@Suite("ember align")
struct AlignCLITests {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ember-cli-align-\(UUID().uuidString)")

    private func write(_ name: String, _ lines: [String]) throws {
        let url = directory.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try lines.joined(separator: "\n").write(to: url, atomically: true, encoding: .utf8)
    }

    private func makeData(model: String = "synthetic@abc") throws {
        var g = SeededGenerator(seed: 12)
        let dim = 32, topics = 4
        func unit() -> [Float] {
            let v = (0..<dim).map { _ in Float(g.unit() * 2 - 1) }
            let n = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return v.map { $0 / n }
        }
        let topic = (0..<topics).map { _ in unit() }, style = (0..<4).map { _ in unit() }
        var items: [String] = [], records: [String] = [], ids: [String] = []
        var warm = [[String]](repeating: [], count: topics), cold = [[String]](repeating: [], count: topics)
        for i in 0..<160 {
            let id = "v\(i)", t = i % topics, noise = unit(), s = style[g.index(below: 4)]
            let vector = (0..<dim).map { 0.45 * topic[t][$0] + s[$0] + 0.3 * noise[$0] }
            let split = i >= 128 ? "cold" : i % 5 == 0 ? "validation" : "train"
            items.append(#"{"item_id":"\#(id)","topic":"t\#(t)","split":"\#(split)"}"#)
            if split == "cold" { cold[t].append(id) } else {
                warm[t].append(id)
                ids.append(#"{"item_id":"\#(id)","vector":[\#(topic[t].prefix(8).map { "\($0 + Float(g.unit()) * 0.1)" }.joined(separator: ","))]}"#)
            }
            let record = EmbeddingRecord(
                itemID: id, model: model, vector: vector, encoding: .f32, modalities: .init(visionFrames: 1, textTokens: 4, audioSeconds: 0),
                source: nil, uploadedAt: nil, embeddedAt: Date(timeIntervalSince1970: 0))
            records.append(String(decoding: try record.jsonBytes(), as: UTF8.self))
        }
        var sequences: [String] = [], i2i: [String] = [], next: [String] = [], neighbours: [String] = []
        for u in 0..<48 {
            let t = u % topics, split = u % 4 == 0 ? "validation" : "train"
            let watched = (0..<10).map { _ in warm[t][g.index(below: warm[t].count)] }
            sequences.append(#"{"user_id":"u\#(u)","items":[\#(watched.map { "\"\($0)\"" }.joined(separator: ","))],"split":"\#(split)"}"#)
            for k in 1..<watched.count { i2i.append(#"{"a":"\#(watched[k - 1])","b":"\#(watched[k])","weight":1,"split":"\#(split)"}"#) }
            next.append(#"{"user_id":"u\#(u)","history":[\#(watched.map { "\"\($0)\"" }.joined(separator: ","))],"target":"\#(cold[t][g.index(below: cold[t].count)])"}"#)
        }
        for t in 0..<topics {
            for c in cold[t] { neighbours.append(#"{"item_id":"\#(c)","neighbours":[\#(warm[t].prefix(10).map { "\"\($0)\"" }.joined(separator: ","))]}"#) }
        }
        try write("items.jsonl", items)
        try write("id_vectors.jsonl", ids)
        try write("sequences.jsonl", sequences)
        try write("i2i.jsonl", i2i)
        try write("eval/next_item.jsonl", next)
        try write("eval/id_neighbours.jsonl", neighbours)
        try write("records.jsonl", records)
    }

    @Test("train writes a head with its metadata; evaluate compares it with the raw vector at each size")
    func trainAndEvaluate() throws {
        try makeData()
        defer { try? FileManager.default.removeItem(at: directory) }
        let head = directory.appendingPathComponent("head.safetensors").path
        let records = directory.appendingPathComponent("records.jsonl").path
        let train = try runEmber([
            "align", "train", "--data", directory.path, "--embeddings", records, "--hidden", "32", "--matryoshka", "16,8",
            "--batch-size", "32", "--epochs", "4", "--steps", "10", "--temperature", "0.1", "--learning-rate", "0.003", "--seed", "5", "-o", head,
        ])
        #expect(train.status == 0, "\(train.output)")
        #expect(train.output.contains("160 items with 32-dim embeddings of synthetic@abc"), "\(train.output)")
        #expect(train.output.contains("pairs (train/validation): id2item "), "\(train.output)")
        #expect(train.output.contains("epoch 1/4: loss "), "\(train.output)")
        #expect(train.output.contains("| align | head | 8 |"), "\(train.output)")
        let file = try ProjectionHead(contentsOf: URL(fileURLWithPath: head))
        #expect(file.metadata.baseModel == "synthetic@abc" && file.matryoshka == [16, 8] && file.inputDim == 32)
        #expect(file.metadata.training["sources"] == "id2item,seq2item,i2i")
        #expect(file.metadata.training["seed"] == "5")
        #expect(file.metadata.training["validation"]?.hasPrefix("recall@50 16:") == true)
        #expect(file.modelID == "synthetic+align@\(file.metadata.hash)")

        let evaluate = try runEmber(["align", "evaluate", "--data", directory.path, "--embeddings", records, "--head", head])
        #expect(evaluate.status == 0, "\(evaluate.output)")
        #expect(evaluate.output.contains("48 next-item cases, 32 cold items with ID neighbours"), "\(evaluate.output)")
        #expect(evaluate.output.contains("| raw | raw fused | 32 |"))
        #expect(evaluate.output.contains("| \(file.modelID) | head | 16 |") && evaluate.output.contains("| \(file.modelID) | head | 8 |"))
    }

    @Test("bad inputs are errors naming what is wrong")
    func badInputs() throws {
        try makeData(model: "omni-small+align@0123456789ab")
        defer { try? FileManager.default.removeItem(at: directory) }
        let records = directory.appendingPathComponent("records.jsonl").path
        let headRecords = try runEmber(["align", "train", "--data", directory.path, "--embeddings", records, "-o", "/dev/null"])
        #expect(headRecords.status != 0 && headRecords.output.contains("a head's output; a head is trained on the raw fused vectors"), "\(headRecords.output)")
        try write("sequences.jsonl", [#"{"user_id":"u1","items":"v1","split":"train"}"#])
        let malformed = try runEmber(["align", "evaluate", "--data", directory.path, "--embeddings", records])
        #expect(malformed.status != 0 && malformed.output.contains("sequences.jsonl:1: items"), "\(malformed.output)")
        let noSource = try runEmber(["align", "train", "--data", directory.path, "--topic", "t", "--embeddings", records, "-o", "x"])
        #expect(noSource.status != 0 && noSource.output.contains("give exactly one of --embeddings and --topic"))
    }
}
