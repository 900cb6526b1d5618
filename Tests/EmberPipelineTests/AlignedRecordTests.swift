import EmberModel
import Foundation
import Testing
import EmberPipeline

/// Records of a worker with a projection head: `matryoshka`, the head's model id and the
/// optional raw fused vector, in JSON and Protocol Buffers.
@Suite("Aligned records")
struct AlignedRecordTests {
    func record(encoding: VectorEncoding, raw: Bool) -> EmbeddingRecord {
        EmbeddingRecord(
            itemID: "7312345678901234567", model: "omni-small+align@0123456789ab", vector: unitVector(256, seed: 2), encoding: encoding,
            semanticID: [3, 1], matryoshka: 256, raw: raw ? RawVector(model: "omni-small@bd0fd0c4dd8b", vector: unitVector(2048, seed: 3)) : nil,
            modalities: .init(visionFrames: 5, textTokens: 15, audioSeconds: 4.04),
            source: .init(topic: "video.uploaded", partition: 3, offset: 12345), uploadedAt: nil,
            embeddedAt: Date(timeIntervalSince1970: 1_764_324_000))
    }

    @Test("JSON and protobuf carry matryoshka and the raw vector, and read back equal", arguments: [VectorEncoding.f32, .f16, .int8])
    func roundTrip(encoding: VectorEncoding) throws {
        let r = record(encoding: encoding, raw: true)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.jsonBytes())) as? [String: Any])
        #expect(object["matryoshka"] as? Int == 256 && object["dim"] as? Int == 256)
        #expect(object["raw_model"] as? String == "omni-small@bd0fd0c4dd8b" && object["raw_dim"] as? Int == 2048)
        #expect((object["raw_scale"] != nil) == (encoding == .int8))
        for format in RecordFormat.allCases {
            let back = try format.decode(try format.encode(r))
            #expect(back == r, "\(format)")
        }
        let raw = try #require(r.rawVector)
        let expected = unitVector(2048, seed: 3)
        let tolerance: Float = encoding == .f32 ? 0 : encoding == .f16 ? 1e-3 : 0.02
        #expect(zip(raw, expected).allSatisfy { abs($0 - $1) <= tolerance })
    }

    @Test("without the raw vector the raw fields are absent")
    func withoutRaw() throws {
        let r = record(encoding: .f16, raw: false)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.jsonBytes())) as? [String: Any])
        #expect(object["raw_embedding"] == nil && object["raw_model"] == nil && object["raw_dim"] == nil)
        #expect(object["matryoshka"] as? Int == 256)
        #expect(try RecordFormat.protobuf.decode(try RecordFormat.protobuf.encode(r)) == r)
        #expect(r.rawVector == nil)
    }
}
