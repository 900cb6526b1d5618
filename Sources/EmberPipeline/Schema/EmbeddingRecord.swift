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
    /// `semanticID` as one string, codes joined by "-" (`12-201-7`).
    public var semanticIDString: String?
    /// Present for the compact encodings only (`int8`, `binary`), so f16/f32 records
    /// stay as they were.
    public var encoding: VectorEncoding?
    /// int8 only: the vector is `embedding` × `scale`.
    public var scale: Float?
    /// With a projection head (`model.head`): the Matryoshka size of the vector (= `dim`).
    public var matryoshka: Int?
    /// With `output.raw_vector`: the fused vector before the head, in the same encoding
    /// (base64, `raw_scale` for int8), with its model id and size.
    public var rawModel: String?
    public var rawDim: Int?
    public var rawEmbedding: String?
    public var rawScale: Float?
    /// With `asr.enabled`, when Ember transcribed the item's speech: the transcript (it
    /// entered the text block as `asr_text`), Whisper's language code, and true.
    public var asrText: String?
    public var asrLanguage: String?
    public var asrGenerated: Bool?
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
        case semanticIDString = "semantic_id_str"
        case encoding, scale
        case matryoshka
        case rawModel = "raw_model"
        case rawDim = "raw_dim"
        case rawEmbedding = "raw_embedding"
        case rawScale = "raw_scale"
        case asrText = "asr_text"
        case asrLanguage = "asr_language"
        case asrGenerated = "asr_generated"
        case modalities, source
        case uploadedAt = "uploaded_at"
        case embeddedAt = "embedded_at"
    }

    public init(
        itemID: String, model: String, vector: [Float], dtype: EmbeddingDType, semanticID: [Int]? = nil,
        modalities: ModalityCounts, source: SourcePosition?, uploadedAt: String?, embeddedAt: Date
    ) {
        self.init(
            itemID: itemID, model: model, vector: vector, encoding: VectorEncoding(dtype), semanticID: semanticID,
            modalities: modalities, source: source, uploadedAt: uploadedAt, embeddedAt: embeddedAt)
    }

    public init(
        itemID: String, model: String, vector: [Float], encoding: VectorEncoding, semanticID: [Int]? = nil,
        matryoshka: Int? = nil, raw: RawVector? = nil,
        modalities: ModalityCounts, source: SourcePosition?, uploadedAt: String?, embeddedAt: Date
    ) {
        self.itemID = itemID
        self.model = model
        self.dim = vector.count
        self.dtype = encoding.dtype
        let encoded = encoding.encode(vector)
        self.embedding = Data(encoded.bytes).base64EncodedString()
        self.encoding = encoding == .f16 || encoding == .f32 ? nil : encoding
        self.scale = encoded.scale
        self.semanticID = semanticID
        self.semanticIDString = semanticID.map(Codebook.string)
        self.matryoshka = matryoshka
        if let raw {
            let encodedRaw = encoding.encode(raw.vector)
            rawModel = raw.model
            rawDim = raw.vector.count
            rawEmbedding = Data(encodedRaw.bytes).base64EncodedString()
            rawScale = encodedRaw.scale
        }
        self.modalities = modalities
        self.source = source
        self.uploadedAt = uploadedAt
        self.embeddedAt = embeddedAt.formatted(.iso8601)
    }

    /// Records the transcript Ember made (`asr_text`, `asr_language`, `asr_generated`).
    public mutating func attach(_ transcript: GeneratedTranscript?) {
        guard let transcript else { return }
        asrText = transcript.text
        asrLanguage = transcript.language
        asrGenerated = true
    }

    /// The vector decoded from `embedding` (binary: ±1/√dim); nil when the base64, its
    /// length or an int8 scale is wrong.
    public var vector: [Float]? {
        guard let data = Data(base64Encoded: embedding) else { return nil }
        return VectorEncoding(dtype).decode([UInt8](data), dim: dim, scale: scale)
    }

    /// The raw fused vector decoded from `raw_embedding`, when the record carries one.
    public var rawVector: [Float]? {
        guard let rawEmbedding, let rawDim, let data = Data(base64Encoded: rawEmbedding) else { return nil }
        return VectorEncoding(dtype).decode([UInt8](data), dim: rawDim, scale: rawScale)
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

/// The fused vector before a projection head, for records that carry both.
public struct RawVector: Sendable, Equatable {
    public var model: String
    public var vector: [Float]

    public init(model: String, vector: [Float]) {
        self.model = model
        self.vector = vector
    }
}
