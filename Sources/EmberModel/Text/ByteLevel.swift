// GPT-2's byte ↔ unicode table (`bytes_to_unicode` in openai/gpt-2's encoder.py, the
// `ByteLevel` pre-tokenizer/decoder of Hugging Face `tokenizers`): every byte is shown as a
// printable character so a byte-level BPE vocabulary can be stored as JSON strings.

/// The 256 byte ↔ character mapping byte-level BPE vocabularies are written in.
enum ByteLevel {
    /// The character standing for each byte: printable Latin-1 bytes (`!`…`~`, `¡`…`¬`,
    /// `®`…`ÿ`) stand for themselves, the other 68 bytes for U+0100 onwards in byte order.
    static let characterOfByte: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: "\0", count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            let printable = (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
            if printable {
                table[byte] = Unicode.Scalar(UInt8(byte))
            } else {
                table[byte] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    /// The inverse table, indexed by character value (all are below U+0144): the byte a
    /// character stands for, -1 for other characters.
    static let byteOfCharacter: [Int16] = {
        var table = [Int16](repeating: -1, count: 0x144)
        for (byte, scalar) in characterOfByte.enumerated() { table[Int(scalar.value)] = Int16(byte) }
        return table
    }()

    /// The bytes a vocabulary token stands for. A token with a character outside the table
    /// (an added token such as `<|im_end|>` is all table characters; a non-byte-level one may
    /// not be) decodes to its own UTF-8, as the `tokenizers` ByteLevel decoder does.
    static func bytes(ofToken token: String) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(token.utf8.count)
        for scalar in token.unicodeScalars {
            let value = Int(scalar.value)
            guard value < byteOfCharacter.count, byteOfCharacter[value] >= 0 else { return Array(token.utf8) }
            bytes.append(UInt8(byteOfCharacter[value]))
        }
        return bytes
    }

    /// The byte-level spelling of raw bytes (how the vocabulary writes them).
    static func token(ofBytes bytes: some Sequence<UInt8>) -> String {
        var scalars = String.UnicodeScalarView()
        for byte in bytes { scalars.append(characterOfByte[Int(byte)]) }
        return String(scalars)
    }
}
