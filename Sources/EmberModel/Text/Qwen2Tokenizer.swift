// The Qwen2 tokenizer (Qwen2, Qwen2-VL, Qwen2.5, Qwen3: one byte-level BPE vocabulary),
// matching Hugging Face `tokenizers` 0.23 `Tokenizer.from_file(tokenizer.json)` with
// `add_special_tokens=False`: added tokens split the raw text first, each piece between them
// is NFC-normalized, split by Qwen2's pattern (Qwen2PreTokenizer), mapped to bytes and merged
// by BPE rank (ByteLevelBPE). Parity: Qwen2TokenizerTests against ids from
// Ops/reference/qwen2_tokenizer_fixture.py.
//
// The real tokenizer.json comes from `Ops/model-fetch qwen2-tokenizer`:
// ~/.cache/ember/models/qwen2-tokenizer/tokenizer.json, sha256
// aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4 (Qwen3's, Apache-2.0;
// Qwen2's 151,643 tokens and merges plus 26 added tokens, ids 151643-151668).
import Foundation

/// Text ↔ token ids for Qwen-family models, read from a Hugging Face `tokenizer.json`.
public struct Qwen2Tokenizer: Sendable {
    /// One more than the largest id, vocabulary and added tokens together (151,669 for the
    /// Qwen3 file; a checkpoint's embedding table may be padded beyond it, e.g. 151,936).
    public let vocabularySize: Int
    /// The added tokens (`<|endoftext|>`, `<|im_start|>`, `<|vision_start|>`, …), in file order.
    let addedTokens: [Qwen2AddedToken]
    private let idOfAddedToken: [String: Int32]
    private let rawMatcher: Qwen2AddedTokenMatcher
    private let normalizedMatcher: Qwen2AddedTokenMatcher
    let bpe: ByteLevelBPE
    /// Bytes of each id for `decode` (empty for unused ids).
    private let bytesOfID: [[UInt8]]
    private let specialIDs: Set<Int32>

    /// Reads and checks a `tokenizer.json`; throws `ModelError.invalidConfig` naming the key
    /// for anything this implementation does not reproduce exactly (a non-BPE model, another
    /// normalizer or split pattern, merges of unknown tokens, …).
    public init(tokenizerJSON url: URL) throws(ModelError) {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ModelError.fileUnreadable(path: url.path, reason: error.localizedDescription)
        }
        try self.init(json: data)
    }

    /// `init(tokenizerJSON:)` from the file's bytes.
    init(json data: Data) throws(ModelError) {
        let file = try Qwen2TokenizerFile(json: data)
        bpe = try ByteLevelBPE(vocabulary: file.vocabulary, merges: file.merges, ignoreMerges: file.ignoreMerges, key: "model")
        addedTokens = file.addedTokens
        var idOfAddedToken: [String: Int32] = [:]
        for token in file.addedTokens { idOfAddedToken[token.content] = token.id }
        self.idOfAddedToken = idOfAddedToken
        rawMatcher = Qwen2AddedTokenMatcher(file.addedTokens.filter { !$0.normalized })
        normalizedMatcher = Qwen2AddedTokenMatcher(file.addedTokens.filter(\.normalized))
        let largest = max(file.vocabulary.values.max() ?? -1, file.addedTokens.map(\.id).max() ?? -1)
        vocabularySize = Int(largest) + 1
        var bytesOfID = [[UInt8]](repeating: [], count: vocabularySize)
        for (token, id) in file.vocabulary { bytesOfID[Int(id)] = ByteLevel.bytes(ofToken: token) }
        for token in file.addedTokens { bytesOfID[Int(token.id)] = Array(token.content.utf8) }
        self.bytesOfID = bytesOfID
        specialIDs = Set(file.addedTokens.filter(\.special).map(\.id))
    }

    /// The ids of `text`, no special tokens added around it. Added tokens written in the text
    /// (`<|im_start|>`, `<|image_pad|>`, …) become their ids.
    public func encode(_ text: String) -> [Int32] {
        let bytes = Array(text.utf8)
        var ids: [Int32] = []
        ids.reserveCapacity(bytes.count / 3 + 1)
        for piece in rawMatcher.split(bytes, 0..<bytes.count) {
            switch piece {
            case .added(let id): ids.append(id)
            case .text(let range):
                let normalized = Self.nfc(bytes[range])
                for inner in normalizedMatcher.split(normalized, 0..<normalized.count) {
                    switch inner {
                    case .added(let id): ids.append(id)
                    case .text(let range):
                        for word in Qwen2PreTokenizer.split(normalized[range]) { bpe.encode(word: normalized[word], into: &ids) }
                    }
                }
            }
        }
        return ids
    }

    /// The text of `ids`: their bytes joined, invalid UTF-8 replaced by U+FFFD (as the
    /// `tokenizers` ByteLevel decoder). Ids outside the vocabulary are skipped. Special tokens
    /// are kept unless `skipSpecialTokens` (so `decode(encode(x)) == x` for NFC text).
    public func decode(_ ids: [Int32], skipSpecialTokens: Bool = false) -> String {
        var bytes: [UInt8] = []
        for id in ids where id >= 0 && Int(id) < bytesOfID.count {
            if skipSpecialTokens, specialIDs.contains(id) { continue }
            bytes.append(contentsOf: bytesOfID[Int(id)])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The id of an added token by its text (`"<|im_start|>"` → 151644), nil if the file has
    /// no such added token.
    public func id(ofSpecial token: String) -> Int32? { idOfAddedToken[token] }

    /// NFC of UTF-8 text as `tokenizers` computes it: with Unicode 9.0 data (its
    /// `unicode-normalization-alignments` tables), so a character assigned later is an
    /// unassigned starter that neither moves nor composes (e.g. U+1DF6, 10.0, stays after
    /// U+0345). Text of characters below U+0300 and of scripts that never compose is NFC
    /// already; the rest is cut at post-9.0 characters and each piece goes through the standard
    /// library's NFC (the one String comparison uses; public, underscored). Foundation's
    /// `precomposedStringWithCanonicalMapping` on Linux is not used: it neither composes a
    /// Hangul LV syllable with a trailing jamo nor reorders combining marks.
    static func nfc(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        if bytes.allSatisfy({ $0 < 0xCC }) { return Array(bytes) }
        let text = String(decoding: bytes, as: UTF8.self)
        if text.unicodeScalars.allSatisfy(isNFCStable) { return Array(bytes) }
        var normalized: [UInt8] = []
        normalized.reserveCapacity(bytes.count)
        var piece = String.UnicodeScalarView()
        func flush() {
            guard !piece.isEmpty else { return }
            normalized.append(contentsOf: String(piece)._nfcCodeUnits)
            piece = String.UnicodeScalarView()
        }
        for scalar in text.unicodeScalars {
            if let parts = nonStarterDecompositions[scalar.value] {
                // The standard library does not reorder these four characters' marks against
                // the marks before them: hand it their decomposition (NFC never keeps them).
                piece.append(contentsOf: parts.map { Unicode.Scalar($0)! })
            } else if let age = scalar.properties.age, age.major > normalizerUnicodeVersion.major
                || (age.major == normalizerUnicodeVersion.major && age.minor > normalizerUnicodeVersion.minor) {
                flush()
                normalized.append(contentsOf: String(scalar).utf8)
            } else {
                piece.append(scalar)
            }
        }
        flush()
        return normalized
    }

    /// The Unicode version of `tokenizers`' NFC data (see `nfc`).
    static let normalizerUnicodeVersion = (major: 9, minor: 0)

    /// The canonical decompositions that start with a non-starter (Unicode's
    /// "non-starter decompositions"): U+0344, U+0F73, U+0F75, U+0F81.
    private static let nonStarterDecompositions: [UInt32: [UInt32]] = [
        0x0344: [0x0308, 0x0301], 0x0F73: [0x0F71, 0x0F72], 0x0F75: [0x0F71, 0x0F74], 0x0F81: [0x0F71, 0x0F80],
    ]

    /// Characters that NFC leaves alone wherever they stand: not decomposed, combining class
    /// 0, never the second character of a composition (checked over all of Unicode by
    /// Ops/reference/qwen2_tokenizer_fixture.py --check-nfc-ranges).
    static func isNFCStable(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0..<0x300, 0x3041...0x3096, 0x30A1...0x30FA, 0x3000...0x3029, 0x4E00...0x9FFF, 0xAC00...0xD7A3,
             0xFF01...0xFF5E, 0x1F300...0x1FAFF, 0x2010...0x2027, 0xFE00...0xFE0F, 0x200B...0x200F:
            true
        default: false
        }
    }
}
