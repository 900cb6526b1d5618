import Foundation
import Testing
import EmberModel
@testable import EmberPipeline

@Suite("Output records")
struct EmbeddingRecordTests {
    private func record(_ vector: [Float], dtype: EmbeddingDType) -> EmbeddingRecord {
        EmbeddingRecord(
            itemID: "42", model: "omni-small@abc123", vector: vector, dtype: dtype, semanticID: [12, 255, 3],
            modalities: .init(visionFrames: 8, textTokens: 57, audioSeconds: 12.4),
            source: .init(topic: "video.uploaded", partition: 3, offset: 12345),
            uploadedAt: "2026-11-28T10:00:00Z", embeddedAt: Date(timeIntervalSince1970: 1_764_324_000))
    }

    @Test("f16 embeddings are little-endian half floats in base64")
    func float16Encoding() throws {
        let r = record([1, -2, 0.5, 0], dtype: .float16)
        // 1.0 = 0x3C00, -2.0 = 0xC000, 0.5 = 0x3800, 0 = 0x0000, little-endian.
        #expect(Data(base64Encoded: r.embedding) == Data([0x00, 0x3C, 0x00, 0xC0, 0x00, 0x38, 0x00, 0x00]))
        #expect(r.dim == 4)
        #expect(r.vector == [1, -2, 0.5, 0])
    }

    @Test("f32 embeddings round-trip exactly")
    func float32RoundTrip() {
        let vector: [Float] = [0.1, -0.333333, 1e-7, 3.4e38]
        let r = record(vector, dtype: .float32)
        #expect(Data(base64Encoded: r.embedding)?.count == 16)
        #expect(r.vector == vector)
    }

    @Test("f16 keeps unit vectors within half precision")
    func float16Precision() {
        let raw = (0..<2048).map { Float(sin(Double($0) * 0.37)) }
        let norm = raw.map { $0 * $0 }.reduce(0, +).squareRoot()
        let unit = raw.map { $0 / norm }
        let decoded = record(unit, dtype: .float16).vector!
        let maxError = zip(unit, decoded).map { abs($0 - $1) }.max()!
        #expect(maxError < 1e-4)
    }

    @Test("JSON has the contract's field names and decodes back")
    func json() throws {
        let r = record([1, 0], dtype: .float16)
        let bytes = try r.jsonBytes()
        let object = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        #expect(Set(object.keys) == [
            "item_id", "model", "dim", "dtype", "embedding", "semantic_id", "semantic_id_str", "modalities", "source",
            "uploaded_at", "embedded_at",
        ])
        #expect(object["semantic_id_str"] as? String == "12-255-3")
        #expect(object["dtype"] as? String == "f16")
        #expect(object["embedded_at"] as? String == "2025-11-28T10:00:00Z")
        let modalities = try #require(object["modalities"] as? [String: Any])
        #expect(modalities["vision_frames"] as? Int == 8)
        #expect(modalities["audio_seconds"] as? Double == 12.4)
        let decoded = try JSONDecoder().decode(EmbeddingRecord.self, from: Data(bytes))
        #expect(decoded == r)
        #expect(try decoded.jsonBytes() == bytes)
    }

    @Test("records without a codebook omit semantic_id")
    func noSemanticID() throws {
        var r = record([1], dtype: .float32)
        r.semanticID = nil
        let object = try JSONSerialization.jsonObject(with: Data(try r.jsonBytes())) as? [String: Any]
        #expect(object?["semantic_id"] == nil)
    }

    @Test("headers carry the content type and model id")
    func headers() {
        let r = record([1], dtype: .float16)
        #expect(r.headers.map(\.key) == ["content-type", "ember-model"])
        #expect(r.headers.last?.value == Array("omni-small@abc123".utf8))
    }
}
