import EmberModel
import EmberMedia
import Foundation
import Testing
@testable import EmberPipeline

/// A unit vector of `dim` values, the same for a seed.
func unitVector(_ dim: Int, seed: UInt64) -> [Float] {
    var generator = SeededGenerator(seed: seed)
    let raw = (0..<dim).map { _ in Float(generator.unit() * 2 - 1) }
    let norm = raw.reduce(0) { $0 + $1 * $1 }.squareRoot()
    return raw.map { $0 / norm }
}

@Suite("Output formats and encodings")
struct OutputFormatTests {
    func record(_ vector: [Float], encoding: VectorEncoding, semanticID: [Int]? = [12, 201, 7], source: Bool = true) -> EmbeddingRecord {
        EmbeddingRecord(
            itemID: "7312345678901234567", model: "omni-small@bd0fd0c4dd8b", vector: vector, encoding: encoding, semanticID: semanticID,
            modalities: .init(visionFrames: 5, textTokens: 15, audioSeconds: 4.04),
            source: source ? .init(topic: "video.uploaded", partition: 3, offset: 12345) : nil,
            uploadedAt: source ? "2026-11-28T10:00:00Z" : nil, embeddedAt: Date(timeIntervalSince1970: 1_764_324_000))
    }

    @Test("f16 records are unchanged: no encoding or scale fields")
    func defaultUnchanged() throws {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(record([0.6, 0.8], encoding: .f16).jsonBytes())) as? [String: Any])
        #expect(object["encoding"] == nil && object["scale"] == nil && object["dtype"] as? String == "f16")
        #expect(object["semantic_id_str"] as? String == "12-201-7")
    }

    @Test("int8 records carry dtype i8 and a scale; binary records dtype bits; both decode back", arguments: [VectorEncoding.int8, .binary])
    func compactRecords(encoding: VectorEncoding) throws {
        let v = unitVector(2048, seed: 1)
        let r = record(v, encoding: encoding)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.jsonBytes())) as? [String: Any])
        #expect(object["encoding"] as? String == encoding.rawValue)
        #expect(object["dtype"] as? String == (encoding == .int8 ? "i8" : "bits"))
        #expect(object["dim"] as? Int == 2048)
        #expect(Data(base64Encoded: r.embedding)?.count == (encoding == .int8 ? 2048 : 256))
        #expect((object["scale"] != nil) == (encoding == .int8))
        let decoded = try JSONDecoder().decode(EmbeddingRecord.self, from: Data(r.jsonBytes()))
        #expect(decoded == r)
        let back = try #require(decoded.vector)
        let cosine = zip(v, back).reduce(Float(0)) { $0 + $1.0 * $1.1 }
        #expect(cosine > (encoding == .int8 ? 0.999 : 0.75), "cosine \(cosine)")
    }

    @Test("protobuf records round-trip every field, for every encoding and without optional fields", arguments: VectorEncoding.allCases)
    func protobufRoundTrip(encoding: VectorEncoding) throws {
        for r in [record(unitVector(64, seed: 2), encoding: encoding), record(unitVector(64, seed: 3), encoding: encoding, semanticID: nil, source: false)] {
            let bytes = try RecordFormat.protobuf.encode(r)
            let decoded = try RecordFormat.protobuf.decode(bytes)
            #expect(decoded == r)
            #expect(try RecordFormat.protobuf.encode(decoded) == bytes)
        }
        #expect(throws: (any Error).self) { try RecordFormat.protobuf.decode([0xFF, 0xFF, 0xFF]) }
    }

    @Test("content types name the format; bytes per record shrink with protobuf and compact encodings")
    func sizes() throws {
        #expect(RecordFormat(contentType: "application/json") == .json)
        #expect(RecordFormat(contentType: nil) == .json)
        #expect(RecordFormat(contentType: RecordFormat.protobuf.contentType) == .protobuf)
        #expect(RecordFormat(contentType: "text/plain") == nil)
        let v = unitVector(2048, seed: 4)
        var sizes: [String: Int] = [:]
        for format in RecordFormat.allCases {
            for encoding in VectorEncoding.allCases {
                sizes["\(format.rawValue)/\(encoding.rawValue)"] = try format.encode(record(v, encoding: encoding)).count
            }
        }
        print("bytes per record (2048 dims, 3-level semantic ID):", sizes.sorted { $0.key < $1.key })
        // JSON carries base64 (4/3 of the bytes) plus ~400 bytes of fields; protobuf the raw bytes plus ~130.
        #expect(sizes["json/f16"]! > 4096 * 4 / 3 && sizes["json/f16"]! < 4096 * 4 / 3 + 500)
        #expect(sizes["protobuf/f16"]! > 4096 && sizes["protobuf/f16"]! < 4096 + 200)
        #expect(sizes["protobuf/binary"]! < 500)
        #expect(sizes["protobuf/int8"]! < sizes["protobuf/f16"]! && sizes["json/binary"]! < sizes["json/int8"]!)
    }
}

/// The tiny random-weight model committed with the EmberModel tests.
let tinyModelDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("EmberModelTests/Fixtures/tiny")

@Suite("Semantic IDs in the worker's records")
struct SemanticIDProcessorTests {
    @Test("records' codes equal a direct assignment with the saved codebook; disambiguation appends the item hash")
    func codesEqualDirectAssignment() throws {
        let engine = try EmbeddingEngine(modelDirectory: tinyModelDirectory)
        let titles = ["the cat sat on the mat", "the dog ran", "hello world", "a cat and a dog play", "the mat", "un ##able cat", "play the world", "c b a"]
        var processor = try MediaModelProcessor(engine: engine, media: MediaConfiguration())
        let events = titles.enumerated().map { UploadEvent(itemID: "item-\($0.offset)", title: $0.element) }
        let plain = try processor.embed(events.map { try processor.prepare($0) }).map { try $0.get() }
        let dim = engine.manifest.output.dim
        // Train on the items themselves plus noise around them, then save and load.
        var training: [Float] = []
        for i in 0..<64 { training += plain[i % plain.count].vector.map { $0 + Float(i) * 1e-3 } }
        let trained = try ResidualKMeans(.init(sizes: [4, 4, 4], seed: 5)).train(training, count: 64, dim: dim, modelID: engine.modelID)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ember-codebook-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try trained.write(to: url)
        let saved = try Codebook(contentsOf: url)

        for disambiguation in SemanticIDDisambiguation.allCases {
            processor.semanticIDs = try SemanticIDAssigner(codebook: saved, disambiguation: disambiguation, modelID: engine.modelID, dim: dim)
            let embedded = try processor.embed(events.map { try processor.prepare($0) }).map { try $0.get() }
            for (event, item) in zip(events, embedded) {
                var expected = try saved.codes(for: item.vector)
                if disambiguation == .itemHash { expected.append(SemanticIDDisambiguation.itemHash.extraCode(itemID: event.itemID)!) }
                #expect(item.semanticID == expected, "\(event.itemID) \(disambiguation)")
            }
        }
        #expect(throws: CodebookError.modelMismatch(codebook: engine.modelID, model: "omni-small@bd0fd0c4dd8b")) {
            try SemanticIDAssigner(codebook: saved, modelID: "omni-small@bd0fd0c4dd8b", dim: dim)
        }
        #expect(
            "\(CodebookError.modelMismatch(codebook: "tiny-omni@1", model: "omni-small@2"))"
                == "the codebook was trained for model tiny-omni@1, but the model is omni-small@2; train one for this model (ember codebook train)")
    }
}
