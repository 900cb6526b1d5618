// Whisper's vocabulary as the CTranslate2 packages ship it (`vocabulary.txt`: one token
// per line, id = line − 1), matching openai/whisper `tokenizer.py` for decoding: text
// tokens are GPT-2 byte-level BPE pieces written with GPT-2's `bytes_to_unicode`
// characters; special tokens are `<|…|>`. The decoder only ever turns ids into text
// (its prompt is special tokens alone), so the BPE merges are not needed.

import Foundation

/// Token ids → UTF-8 text, and the special tokens decoding needs.
public struct WhisperVocabulary: Sendable {
    /// Token strings by id.
    public let tokens: [String]
    public let endOfText: Int32           // <|endoftext|>
    public let startOfTranscript: Int32   // <|startoftranscript|>
    public let transcribe: Int32          // <|transcribe|>
    public let translate: Int32           // <|translate|>
    public let startOfLM: Int32           // <|startoflm|>
    public let startOfPrevious: Int32     // <|startofprev|>
    public let noSpeech: Int32            // <|nocaptions|> (later vocabularies: <|nospeech|>)
    public let noTimestamps: Int32        // <|notimestamps|>
    /// The first special token: every id below is text (`<|endoftext|>` for both vocabularies).
    public let firstSpecial: Int32
    /// Language tokens by code (`en`, `zh`, …), those between `<|startoftranscript|>` and
    /// `<|translate|>`; empty for English-only checkpoints, which never read them.
    public let languages: [(code: String, token: Int32)]
    /// Whisper's rule (`model.is_multilingual`): the multilingual vocabularies have 51865+ tokens.
    public let multilingual: Bool

    /// Reads `vocabulary.txt`; throws when a special token decoding needs is missing.
    public init(file: URL) throws {
        let text: String
        do { text = try String(contentsOf: file, encoding: .utf8) } catch {
            throw ModelError.fileUnreadable(path: file.path, reason: "\(error.localizedDescription)")
        }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        try self.init(tokens: lines)
    }

    public init(tokens: [String]) throws {
        self.tokens = tokens
        var ids: [String: Int32] = [:]
        for (i, token) in tokens.enumerated() where token.hasPrefix("<|") && token.hasSuffix("|>") { ids[token] = ids[token] ?? Int32(i) }
        func id(_ names: String...) throws -> Int32 {
            for name in names { if let id = ids[name] { return id } }
            throw ModelError.invalidConfig(key: "towers.audio.asr.vocabulary", reason: "no \(names.joined(separator: " or ")) token")
        }
        endOfText = try id("<|endoftext|>")
        startOfTranscript = try id("<|startoftranscript|>")
        transcribe = try id("<|transcribe|>")
        translate = try id("<|translate|>")
        startOfLM = try id("<|startoflm|>")
        startOfPrevious = try id("<|startofprev|>")
        noSpeech = try id("<|nocaptions|>", "<|nospeech|>")
        noTimestamps = try id("<|notimestamps|>")
        firstSpecial = endOfText
        multilingual = tokens.count >= 51865
        languages = multilingual
            ? (Int(startOfTranscript) + 1..<Int(translate)).map { (String(tokens[$0].dropFirst(2).dropLast(2)), Int32($0)) }
            : []
    }

    /// The text of `ids`, special tokens skipped; invalid UTF-8 (a character cut between
    /// tokens at the end) becomes U+FFFD, as `bytes.decode("utf-8", errors="replace")`.
    public func decode(_ ids: [Int32]) -> String {
        var bytes: [UInt8] = []
        for id in ids where id >= 0 && id < firstSpecial && Int(id) < tokens.count {
            for scalar in tokens[Int(id)].unicodeScalars {
                if let byte = Self.byteOfCharacter[scalar.value] { bytes.append(byte) }
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// GPT-2's `bytes_to_unicode` inverted: printable Latin-1 bytes stand for themselves,
    /// the other 68 bytes for U+0100 + n in byte order.
    static let byteOfCharacter: [UInt32: UInt8] = {
        var map: [UInt32: UInt8] = [:]
        var next: UInt32 = 256
        for byte in 0...255 {
            let printable = (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
            if printable {
                map[UInt32(byte)] = UInt8(byte)
            } else {
                map[next] = UInt8(byte)
                next += 1
            }
        }
        return map
    }()
}
