import EmberModel
import Foundation
import SwiftProtobuf

/// Errors turning Protocol Buffers bytes into an `EmbeddingRecord`.
public struct RecordDecodingError: Error, CustomStringConvertible, Equatable {
    public let description: String
}

extension EmbeddingRecord {
    /// The record as `ember.v1.EmbeddingRecord` bytes (deterministic field order).
    public func protobufBytes() throws -> [UInt8] {
        guard let vectorBytes = Data(base64Encoded: embedding) else {
            throw RecordDecodingError(description: "embedding is not base64")
        }
        var message = Ember_V1_EmbeddingRecord()
        message.itemID = itemID
        message.model = model
        message.dim = UInt32(dim)
        message.dtype = dtype.rawValue
        message.embedding = vectorBytes
        message.semanticID = (semanticID ?? []).map { UInt32($0) }
        message.semanticIDStr = semanticIDString ?? ""
        message.modalities = .with {
            $0.visionFrames = UInt32(modalities.visionFrames)
            $0.textTokens = UInt32(modalities.textTokens)
            $0.audioSeconds = modalities.audioSeconds
        }
        if let source {
            message.source = .with {
                $0.topic = source.topic
                $0.partition = source.partition
                $0.offset = source.offset
            }
        }
        if let uploadedAt { message.uploadedAt = uploadedAt }
        message.embeddedAt = embeddedAt
        message.encoding = encoding?.rawValue ?? ""
        if let scale { message.scale = scale }
        if let matryoshka { message.matryoshka = UInt32(matryoshka) }
        if let rawEmbedding, let rawModel, let rawDim {
            guard let rawBytes = Data(base64Encoded: rawEmbedding) else { throw RecordDecodingError(description: "raw_embedding is not base64") }
            message.rawModel = rawModel
            message.rawDim = UInt32(rawDim)
            message.rawEmbedding = rawBytes
            if let rawScale { message.rawScale = rawScale }
        }
        if let asrText { message.asrText = asrText }
        if let asrLanguage { message.asrLanguage = asrLanguage }
        message.asrGenerated = asrGenerated ?? false
        var options = BinaryEncodingOptions()
        options.useDeterministicOrdering = true
        return [UInt8](try message.serializedData(options: options))
    }

    /// Reads `ember.v1.EmbeddingRecord` bytes.
    public init(protobuf bytes: [UInt8]) throws {
        let message = try Ember_V1_EmbeddingRecord(serializedBytes: bytes)
        guard let dtype = EmbeddingDType(rawValue: message.dtype) else {
            throw RecordDecodingError(description: "unknown dtype \(message.dtype)")
        }
        let encoding = message.encoding.isEmpty ? nil : VectorEncoding(rawValue: message.encoding)
        if !message.encoding.isEmpty && encoding == nil {
            throw RecordDecodingError(description: "unknown encoding \(message.encoding)")
        }
        itemID = message.itemID
        model = message.model
        dim = Int(message.dim)
        self.dtype = dtype
        embedding = message.embedding.base64EncodedString()
        semanticID = message.semanticID.isEmpty ? nil : message.semanticID.map { Int($0) }
        semanticIDString = message.semanticIDStr.isEmpty ? nil : message.semanticIDStr
        self.encoding = encoding
        scale = message.hasScale ? message.scale : nil
        matryoshka = message.hasMatryoshka ? Int(message.matryoshka) : nil
        if !message.rawModel.isEmpty {
            rawModel = message.rawModel
            rawDim = Int(message.rawDim)
            rawEmbedding = message.rawEmbedding.base64EncodedString()
            rawScale = message.hasRawScale ? message.rawScale : nil
        }
        if message.asrGenerated {
            asrText = message.asrText
            asrLanguage = message.asrLanguage
            asrGenerated = true
        }
        modalities = ModalityCounts(
            visionFrames: Int(message.modalities.visionFrames), textTokens: Int(message.modalities.textTokens),
            audioSeconds: message.modalities.audioSeconds)
        source = message.hasSource ? SourcePosition(topic: message.source.topic, partition: message.source.partition, offset: message.source.offset) : nil
        uploadedAt = message.hasUploadedAt ? message.uploadedAt : nil
        embeddedAt = message.embeddedAt
    }
}
