import EmberKafka
import EmberModel
import Foundation

/// The output record for one item (DESIGN.md "Topics and messages"). Key = `item_id`.
public struct EmbeddingRecord: Sendable, Equatable, Codable {
    public var itemID: String
    public var model: String
    public var dim: Int
    public var dtype: EmbeddingDType
    /// Base64 of the little-endian vector in `dtype`.
    public var embedding: String
    public var semanticID: [Int]?
    /// What went in, as the model counted it.
    public var modalities: ModalityCounts
    /// Where the input event was read; absent for records made outside the worker (`ember embed`).
    public var source: SourcePosition?
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
        modalities: ModalityCounts, source: SourcePosition?, uploadedAt: String?, embeddedAt: Date
    ) {
        self.itemID = itemID
        self.model = model
        self.dim = vector.count
        self.dtype = dtype
        self.embedding = Data(dtype.littleEndianBytes(of: vector)).base64EncodedString()
        self.semanticID = semanticID
        self.modalities = modalities
        self.source = source
        self.uploadedAt = uploadedAt
        self.embeddedAt = embeddedAt.formatted(.iso8601)
    }

    /// The vector decoded from `embedding`; nil when the base64 or its length is wrong.
    public var vector: [Float]? {
        guard let data = Data(base64Encoded: embedding),
            let vector = dtype.vector(fromLittleEndian: [UInt8](data)), vector.count == dim
        else { return nil }
        return vector
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
