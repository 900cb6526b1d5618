import Foundation

/// Word and character error rates of a transcript against a reference, after Whisper's
/// basic normalization (case folded, punctuation and symbols removed, whitespace
/// collapsed): edit distance / reference length. Character rates ignore spaces (for
/// Chinese and Japanese, written without them).
public enum WordErrorRate {
    /// Word error rate; 0 when both are empty, 1 per reference word missed.
    public static func words(_ hypothesis: String, reference: String) -> Double {
        rate(normalized(hypothesis).split(separator: " ").map(String.init), normalized(reference).split(separator: " ").map(String.init))
    }

    /// Character error rate over the normalized text with spaces removed.
    public static func characters(_ hypothesis: String, reference: String) -> Double {
        rate(normalized(hypothesis).filter { $0 != " " }.map(String.init), normalized(reference).filter { $0 != " " }.map(String.init))
    }

    /// Lowercased; every punctuation mark or symbol becomes a space; spaces collapsed.
    public static func normalized(_ text: String) -> String {
        let scalars = text.lowercased().unicodeScalars.map { scalar -> Character in
            CharacterSet.punctuationCharacters.contains(scalar) || CharacterSet.symbols.contains(scalar) ? " " : Character(scalar)
        }
        return String(scalars).split(whereSeparator: \.isWhitespace).joined(separator: " ")
    }

    static func rate(_ hypothesis: [String], _ reference: [String]) -> Double {
        guard !reference.isEmpty else { return hypothesis.isEmpty ? 0 : 1 }
        // Levenshtein distance, one row at a time.
        var previous = Array(0...hypothesis.count)
        for (i, word) in reference.enumerated() {
            var current = [i + 1] + [Int](repeating: 0, count: hypothesis.count)
            for (j, guess) in hypothesis.enumerated() {
                current[j + 1] = min(previous[j + 1] + 1, current[j] + 1, previous[j] + (word == guess ? 0 : 1))
            }
            previous = current
        }
        return Double(previous[hypothesis.count]) / Double(reference.count)
    }
}
