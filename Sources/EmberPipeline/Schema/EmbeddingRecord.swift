import EmberKafka
import Foundation

/// How the embedding vector is written into the output record.
public enum EmbeddingDType: String, Sendable, Codable, CaseIterable {
    /// IEEE half precision, little-endian, base64: half the bytes, ~1e-3 relative error.
    case f16
    /// IEEE single precision, little-endian, base64.
    case f32
}

/// The output record for one item (DESIGN.md "Topics and messages"). Key = `item_id`.
public struct EmbeddingRecord: Sendable, Equatable, Codable {
    public struct Modalities: Sendable, Equatable, Codable {
        public var visionFrames: Int
        public var textTokens: Int
        public var audioSeconds: Double

        enum CodingKeys: String, CodingKey {
            case visionFrames = "vision_frames"
            case textTokens = "text_tokens"
            case audioSeconds = "audio_seconds"
        }

        public init(visionFrames: Int, textTokens: Int, audioSeconds: Double) {
            self.visionFrames = visionFrames
            self.textTokens = textTokens
            self.audioSeconds = audioSeconds
        }
    }

    /// Where the input event was read, so consumers can trace a vector back.
    public struct Source: Sendable, Equatable, Codable {
        public var topic: String
        public var partition: Int32
        public var offset: Int64

        public init(topic: String, partition: Int32, offset: Int64) {
            self.topic = topic
            self.partition = partition
            self.offset = offset
        }
    }

    public var itemID: String
    public var model: String
    public var dim: Int
    public var dtype: EmbeddingDType
    /// Base64 of the little-endian vector in `dtype`.
    public var embedding: String
    public var semanticID: [Int]?
    public var modalities: Modalities
    /// Absent for records made outside the worker (`ember embed`).
    public var source: Source?
    public var uploadedAt: String?
    public var embeddedAt: String

    enum CodingKeys: String, CodingKey {
        case itemID = "item_id"
        case model, dim, dtype, embedding
        case semanticID = "semantic_id"
        case modalities, source
        case uploadedAt = "uploaded_at"
        case embeddedAt = "embedded_at"
    }

    public init(
        itemID: String, model: String, vector: [Float], dtype: EmbeddingDType, semanticID: [Int]? = nil,
        modalities: Modalities, source: Source?, uploadedAt: String?, embeddedAt: Date
    ) {
        self.itemID = itemID
        self.model = model
        self.dim = vector.count
        self.dtype = dtype
        self.embedding = Self.encode(vector, as: dtype).base64EncodedString()
        self.semanticID = semanticID
        self.modalities = modalities
        self.source = source
        self.uploadedAt = uploadedAt
        self.embeddedAt = embeddedAt.formatted(.iso8601)
    }

    /// The vector decoded from `embedding`; nil when the base64 or its length is wrong.
    public var vector: [Float]? {
        guard let data = Data(base64Encoded: embedding) else { return nil }
        let bytes = [UInt8](data)
        switch dtype {
        case .f16:
            guard bytes.count == dim * 2 else { return nil }
            return (0..<dim).map { i in
                Float(Float16(bitPattern: UInt16(bytes[2 * i]) | UInt16(bytes[2 * i + 1]) << 8))
            }
        case .f32:
            guard bytes.count == dim * 4 else { return nil }
            return (0..<dim).map { i in
                Float(bitPattern: (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[4 * i + $1]) << (8 * $1) })
            }
        }
    }

    /// Little-endian bytes of the vector in `dtype`.
    static func encode(_ vector: [Float], as dtype: EmbeddingDType) -> Data {
        var data = Data(capacity: vector.count * (dtype == .f16 ? 2 : 4))
        for value in vector {
            switch dtype {
            case .f16:
                let bits = Float16(value).bitPattern.littleEndian
                withUnsafeBytes(of: bits) { data.append(contentsOf: $0) }
            case .f32:
                let bits = value.bitPattern.littleEndian
                withUnsafeBytes(of: bits) { data.append(contentsOf: $0) }
            }
        }
        return data
    }

    /// Compact JSON, keys sorted so equal records are equal bytes.
    public func jsonBytes() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return [UInt8](try encoder.encode(self))
    }

    /// Record headers: the content type and the model id.
    public var headers: [KafkaHeader] {
        [KafkaHeader(key: "content-type", string: "application/json"), KafkaHeader(key: "ember-model", string: model)]
    }
}
