// Qwen2's pre-tokenizer: the `Split` (behaviour `Isolated`) of its tokenizer.json, written out
// by hand instead of run through a regex engine. The pattern, as Oniguruma runs it inside
// `tokenizers` (leftmost match, alternatives tried in order, `\s` = Unicode White_Space):
//
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)       1 contractions (case-insensitive; `ſ` folds to s)
//   |[^\r\n\p{L}\p{N}]?\p{L}+          2 letters, with at most one leading non-letter/number
//   |\p{N}                             3 one digit
//   | ?[^\s\p{L}\p{N}]+[\r\n]*          4 punctuation/symbols, optional leading space, then newlines
//   |\s*[\r\n]+                        5 whitespace up to the last newline of the run
//   |\s+(?!\S)                         6 whitespace but the last one before a non-space
//   |\s+                               7 the rest of the whitespace
//
// Every character starts some alternative, so the matches tile the text (no gaps).

/// Splits NFC text into Qwen2's pre-tokens.
enum Qwen2PreTokenizer {
    /// The `Split` pattern this type implements; a tokenizer.json with another one is refused.
    static let pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// The character classes the pattern distinguishes.
    enum Class: UInt8 {
        case letter, number
        case newline  // \r or \n (also whitespace)
        case space  // U+0020 (also whitespace)
        case whitespace  // the other White_Space characters
        case other

        var isWhitespace: Bool { self == .newline || self == .space || self == .whitespace }
    }

    private static let asciiClasses: [Class] = (0..<128).map { value in
        switch UInt8(value) {
        case UInt8(ascii: "\r"), UInt8(ascii: "\n"): .newline
        case UInt8(ascii: " "): .space
        case 0x09, 0x0B, 0x0C: .whitespace
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"): .letter
        case UInt8(ascii: "0")...UInt8(ascii: "9"): .number
        default: .other
        }
    }

    static func classify(_ scalar: Unicode.Scalar) -> Class {
        if scalar.value < 128 { return asciiClasses[Int(scalar.value)] }
        let properties = scalar.properties
        if properties.isWhitespace { return .whitespace }
        let letterOrNumber: Class
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: letterOrNumber = .letter
        case .decimalNumber, .letterNumber, .otherNumber: letterOrNumber = .number
        default: return .other
        }
        // A character assigned after the regex engine's Unicode version is unassigned (Cn)
        // to it, so `other`.
        guard let age = properties.age, age.major < regexUnicodeVersion.major
            || (age.major == regexUnicodeVersion.major && age.minor <= regexUnicodeVersion.minor) else { return .other }
        return letterOrNumber
    }

    /// The Unicode version of the Oniguruma tables inside `tokenizers` 0.23: letters of
    /// 16.0 (U+1C89) are `\p{L}` to it, those of 17.0 (U+16EA6) are not.
    static let regexUnicodeVersion = (major: 16, minor: 0)

    /// The pre-tokens of `text` (UTF-8) as byte ranges, in order, covering all of it.
    static func split(_ text: ArraySlice<UInt8>) -> [Range<Int>] {
        // Decode once: each character's class, its value (for the contractions) and its
        // first byte's offset.
        var classes: [Class] = []
        var values: [UInt32] = []
        var offsets: [Int] = []
        classes.reserveCapacity(text.count)
        values.reserveCapacity(text.count)
        offsets.reserveCapacity(text.count + 1)
        var index = text.startIndex
        var decoder = UTF8()
        var iterator = text.makeIterator()
        loop: while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar):
                classes.append(classify(scalar))
                values.append(scalar.value)
                offsets.append(index)
                index += UTF8.width(scalar)
            case .emptyInput: break loop
            case .error:
                // Unreachable for a Swift String's bytes; one replacement character's worth.
                classes.append(.other)
                values.append(0xFFFD)
                offsets.append(index)
                index += 1
            }
        }
        offsets.append(text.endIndex)

        var pieces: [Range<Int>] = []
        var start = 0
        while start < classes.count {
            let end = matchEnd(at: start, classes: classes, values: values)
            pieces.append(offsets[start]..<offsets[end])
            start = end
        }
        return pieces
    }

    /// Where the pattern's match starting at character `i` ends (exclusive).
    static func matchEnd(at i: Int, classes: [Class], values: [UInt32]) -> Int {
        let n = classes.count
        func run(from start: Int, while accept: (Class) -> Bool) -> Int {
            var end = start
            while end < n, accept(classes[end]) { end += 1 }
            return end
        }
        // 1: 's 't 're 've 'm 'll 'd, any case.
        if values[i] == 0x27, i + 1 < n {
            let first = folded(values[i + 1])
            if first == "s" || first == "t" || first == "m" || first == "d" { return i + 2 }
            if i + 2 < n {
                let second = folded(values[i + 2])
                if (first == "r" && second == "e") || (first == "v" && second == "e") || (first == "l" && second == "l") { return i + 3 }
            }
        }
        let c = classes[i]
        // 2: letters, or one character that is not \r, \n, a letter or a number, then letters.
        if c == .letter { return run(from: i + 1) { $0 == .letter } }
        if c != .number, c != .newline, i + 1 < n, classes[i + 1] == .letter { return run(from: i + 2) { $0 == .letter } }
        // 3: a single number character.
        if c == .number { return i + 1 }
        // 4: an optional space, symbols/punctuation, then any \r\n.
        var symbols = i
        if c == .space, i + 1 < n, classes[i + 1] == .other { symbols = i + 1 }
        if classes[symbols] == .other {
            let end = run(from: symbols + 1) { $0 == .other }
            return run(from: end) { $0 == .newline }
        }
        // Whitespace from here on.
        let end = run(from: i) { $0.isWhitespace }
        // 5: \s*[\r\n]+ — backtracks to the last newline of the run.
        var last = end - 1
        while last >= i, classes[last] != .newline { last -= 1 }
        if last >= i { return last + 1 }
        // 6: \s+(?!\S) — the whole run at the end of the text, else all but its last character.
        if end == n { return end }
        if end - 1 > i { return end - 1 }
        // 7: \s+
        return end
    }

    /// Oniguruma's case folding for the contraction letters: ASCII upper case, and `ſ`
    /// (U+017F, folds to s).
    private static func folded(_ value: UInt32) -> Character? {
        switch value {
        case 0x41...0x5A: Character(Unicode.Scalar(value + 0x20)!)
        case 0x61...0x7A: Character(Unicode.Scalar(value)!)
        case 0x17F: "s"
        default: nil
        }
    }
}
