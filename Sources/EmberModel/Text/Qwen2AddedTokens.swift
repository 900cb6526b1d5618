// The added tokens of a tokenizer.json (`<|im_start|>`, `<|image_pad|>`, …) as Hugging Face
// `tokenizers`' `AddedVocabulary` finds them: before normalization and pre-tokenization,
// leftmost-longest matches of their exact text split the input; the pieces in between are
// tokenized as usual.

/// One added token of a tokenizer.json's `added_tokens`.
struct Qwen2AddedToken: Sendable, Equatable {
    let id: Int32
    let content: String
    /// Special tokens are dropped by `decode(_:skipSpecialTokens: true)`.
    let special: Bool
    /// Matched in the normalized text instead of the raw text.
    let normalized: Bool
}

/// Leftmost-longest matching of a set of added tokens in UTF-8 text.
struct Qwen2AddedTokenMatcher: Sendable {
    /// A piece of the input: an added token's id, or a byte range of ordinary text.
    enum Piece: Equatable {
        case added(Int32)
        case text(Range<Int>)
    }

    /// The tokens starting with each byte, longest first.
    private let candidates: [[(bytes: [UInt8], id: Int32)]]
    let isEmpty: Bool

    init(_ tokens: [Qwen2AddedToken]) {
        var candidates = [[(bytes: [UInt8], id: Int32)]](repeating: [], count: 256)
        for token in tokens {
            let bytes = Array(token.content.utf8)
            guard let first = bytes.first else { continue }
            candidates[Int(first)].append((bytes, token.id))
        }
        for byte in 0..<256 { candidates[byte].sort { $0.bytes.count > $1.bytes.count } }
        self.candidates = candidates
        isEmpty = tokens.isEmpty
    }

    /// Splits `text[range]` into added tokens and the text between them (no empty pieces).
    func split(_ text: [UInt8], _ range: Range<Int>) -> [Piece] {
        guard !isEmpty else { return range.isEmpty ? [] : [.text(range)] }
        var pieces: [Piece] = []
        var textStart = range.lowerBound
        var i = range.lowerBound
        scan: while i < range.upperBound {
            for candidate in candidates[Int(text[i])] where candidate.bytes.count <= range.upperBound - i {
                if text[i..<(i + candidate.bytes.count)].elementsEqual(candidate.bytes) {
                    if textStart < i { pieces.append(.text(textStart..<i)) }
                    pieces.append(.added(candidate.id))
                    i += candidate.bytes.count
                    textStart = i
                    continue scan
                }
            }
            i += 1
        }
        if textStart < range.upperBound { pieces.append(.text(textStart..<range.upperBound)) }
        return pieces
    }
}
