import EmberModel
import FuzzSupport

/// A small vocabulary with the special tokens, sub-words and a CJK character, so
/// greedy matching, `##` continuation and truncation are all reached.
let tokenizer = try! WordPieceTokenizer(
    tokens: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "cat", "##s", "un", "##believ", "##able", "é", "e", "中", ",", "!", "##a"],
    config: WordPieceConfig(maxLength: 24))

/// Titles, tags and transcripts from events: any text (the input decoded as UTF-8
/// with replacement, as the worker's strings are) must tokenize within its length.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWordPiece(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    guard let start else { return 0 }
    let text = String(decoding: fuzzInput(start, count), as: UTF8.self)
    let ids = tokenizer.encode(text)
    precondition(ids.count >= 2 && ids.count <= 24 && ids.first == tokenizer.clsID && ids.last == tokenizer.sepID)
    precondition(ids.allSatisfy { $0 >= 0 && $0 < 16 })
    return 0
}

@main enum Main {
    static func main() { runFuzzer(fuzzWordPiece) }
}
