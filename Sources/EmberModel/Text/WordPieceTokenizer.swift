import Foundation

/// BERT's WordPiece tokenizer, matching Hugging Face `BertTokenizer`/`BertNormalizer` +
/// `BertPreTokenizer` + `WordPiece`: clean text, split CJK characters, lower-case and strip
/// accents, split on whitespace and punctuation, greedy longest-match sub-words with `##`.
public struct WordPieceTokenizer: Sendable {
    public let vocabulary: [String: Int32]
    public let config: WordPieceConfig
    public let clsID: Int32
    public let sepID: Int32
    public let unkID: Int32
    /// Words longer than this (in Unicode scalars) become `[UNK]`, as in the reference.
    public let maxInputCharsPerWord = 100

    /// Loads `vocab.txt`: one token per line, the line number is the id.
    public init(vocabularyFile: URL, config: WordPieceConfig) throws {
        let text: String
        do { text = try String(contentsOf: vocabularyFile, encoding: .utf8) } catch {
            throw ModelError.fileUnreadable(path: vocabularyFile.path, reason: "\(error.localizedDescription)")
        }
        var lines = text.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        try self.init(tokens: lines.map { $0.hasSuffix("\r") ? String($0.dropLast()) : $0 }, config: config)
    }

    public init(tokens: [String], config: WordPieceConfig) throws {
        var vocabulary: [String: Int32] = [:]
        for (id, token) in tokens.enumerated() where vocabulary[token] == nil { vocabulary[token] = Int32(id) }
        func id(_ token: String) throws -> Int32 {
            guard let id = vocabulary[token] else { throw ModelError.invalidConfig(key: "tokenizer.vocab", reason: "no \(token) token") }
            return id
        }
        guard config.maxLength >= 2 else { throw ModelError.invalidConfig(key: "tokenizer.max_length", reason: "must be at least 2") }
        self.vocabulary = vocabulary
        self.config = config
        clsID = try id("[CLS]")
        sepID = try id("[SEP]")
        unkID = try id("[UNK]")
    }

    /// Token ids `[CLS] pieces… [SEP]`, truncated to `config.maxLength` in total.
    public func encode(_ text: String) -> [Int32] {
        var ids: [Int32] = [clsID]
        let budget = config.maxLength - 2
        outer: for word in basicTokenize(text) {
            for id in wordPiece(word) {
                if ids.count - 1 >= budget { break outer }
                ids.append(id)
            }
        }
        ids.append(sepID)
        return ids
    }

    /// Normalization and pre-tokenization: the words WordPiece sees.
    public func basicTokenize(_ text: String) -> [String] {
        var words: [String] = []
        var current = String.UnicodeScalarView()
        func flush() {
            if !current.isEmpty { words.append(String(current)); current = String.UnicodeScalarView() }
        }
        for scalar in normalize(text).unicodeScalars {
            if Self.isWhitespace(scalar) {
                flush()
            } else if Self.isPunctuation(scalar) || (config.tokenizeChineseChars && Self.isCJK(scalar)) {
                flush()
                words.append(String(scalar))
            } else {
                current.append(scalar)
            }
        }
        flush()
        return words
    }

    /// Clean (drop NUL, U+FFFD and control characters, whitespace → space), lower-case,
    /// strip accents (NFD, drop non-spacing marks).
    func normalize(_ text: String) -> String {
        var cleaned = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if scalar.value == 0 || scalar.value == 0xFFFD || Self.isControl(scalar) { continue }
            cleaned.append(Self.isWhitespace(scalar) ? " " : scalar)
        }
        var result = String(cleaned)
        if config.lowercase { result = result.lowercased() }
        if config.stripAccents {
            var stripped = String.UnicodeScalarView()
            for scalar in result.decomposedStringWithCanonicalMapping.unicodeScalars
            where scalar.properties.generalCategory != .nonspacingMark {
                stripped.append(scalar)
            }
            result = String(stripped)
        }
        return result
    }

    /// Greedy longest-match-first sub-words; a word with no match is one `[UNK]`.
    func wordPiece(_ word: String) -> [Int32] {
        let scalars = Array(word.unicodeScalars)
        if scalars.count > maxInputCharsPerWord { return [unkID] }
        var pieces: [Int32] = []
        var start = 0
        while start < scalars.count {
            var end = scalars.count
            var found: Int32?
            while start < end {
                var candidate = String(String.UnicodeScalarView(scalars[start..<end]))
                if start > 0 { candidate = "##" + candidate }
                if let id = vocabulary[candidate] {
                    found = id
                    break
                }
                end -= 1
            }
            guard let id = found else { return [unkID] }
            pieces.append(id)
            start = end
        }
        return pieces
    }

    static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
        s == " " || s == "\t" || s == "\n" || s == "\r" || s.properties.generalCategory == .spaceSeparator
    }

    static func isControl(_ s: Unicode.Scalar) -> Bool {
        if s == "\t" || s == "\n" || s == "\r" { return false }
        switch s.properties.generalCategory {
        case .control, .format, .privateUse, .surrogate, .unassigned: return true
        default: return false
        }
    }

    static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v) || (123...126).contains(v) { return true }
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
            .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return true
        default: return false
        }
    }

    /// The CJK Unified Ideograph blocks BERT splits into single characters.
    static func isCJK(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F,
            0x2B740...0x2B81F, 0x2B820...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default: return false
        }
    }
}

/// `towers.text.tokenizer` in the manifest.
public struct WordPieceConfig: Codable, Sendable {
    /// Vocabulary file name inside the model directory (`vocab.txt`).
    public var vocab: String
    public var lowercase: Bool
    public var stripAccents: Bool
    public var tokenizeChineseChars: Bool
    /// Maximum sequence length including `[CLS]` and `[SEP]`.
    public var maxLength: Int

    public init(vocab: String = "vocab.txt", lowercase: Bool = true, stripAccents: Bool = true, tokenizeChineseChars: Bool = true, maxLength: Int = 256) {
        self.vocab = vocab
        self.lowercase = lowercase
        self.stripAccents = stripAccents
        self.tokenizeChineseChars = tokenizeChineseChars
        self.maxLength = maxLength
    }
}
