import EmberKafka
import EmberModel
import Foundation
import SwiftProtobuf

/// How output records are serialized (`output.format`). JSON is the contract's default;
/// Protocol Buffers (schema `Config/ember_record.proto`, message `ember.v1.EmbeddingRecord`)
/// carry the same fields with the vector as raw bytes instead of base64.
public enum RecordFormat: String, Sendable, CaseIterable {
    case json, protobuf

    /// The `content-type` header of records in this format.
    public var contentType: String {
        switch self {
        case .json: "application/json"
        case .protobuf: "application/x-protobuf; proto=ember.v1.EmbeddingRecord"
        }
    }

    public func encode(_ record: EmbeddingRecord) throws -> [UInt8] {
        switch self {
        case .json: try record.jsonBytes()
        case .protobuf: try record.protobufBytes()
        }
    }

    public func decode(_ bytes: [UInt8]) throws -> EmbeddingRecord {
        switch self {
        case .json: try JSONDecoder().decode(EmbeddingRecord.self, from: Data(bytes))
        case .protobuf: try EmbeddingRecord(protobuf: bytes)
        }
    }

    /// The format a record's `content-type` header names (records without one are JSON).
    public init?(contentType: String?) {
        guard let contentType else {
            self = .json
            return
        }
        guard let format = Self.allCases.first(where: { $0.contentType == contentType }) else { return nil }
        self = format
    }
}

extension EmbeddingRecord {
    /// Record headers for `format`: its content type and the model id.
    public func headers(_ format: RecordFormat) -> [KafkaHeader] {
        [KafkaHeader(key: "content-type", string: format.contentType), KafkaHeader(key: "ember-model", string: model)]
    }
}
