import Foundation
import Testing
@testable import EmberModel

/// The Qwen2 byte-level BPE tokenizer against Hugging Face `tokenizers` 0.23 on the real
/// Qwen vocabulary (`Ops/model-fetch qwen2-tokenizer`, which Ops/test runs): ids, decodes and
/// U+FFFD handling for every line of Fixtures/qwen2-tokenizer/corpus.jsonl and 1,000 seeded
/// random texts. expected.json is made by Ops/reference/qwen2_tokenizer_fixture.py; with the
/// reference venv (Ops/model-python-env), `… qwen2_tokenizer_fixture.py --check` regenerates
/// it and fails when it differs from the committed file.
let qwen2TokenizerFixtures = fixtures.appendingPathComponent("qwen2-tokenizer")
let realQwen2Tokenizer = Result { () throws(ModelError) -> Qwen2Tokenizer in try Qwen2Tokenizer(tokenizerJSON: .qwen2TokenizerFile) }

func loadQwen2Tokenizer() throws -> Qwen2Tokenizer {
    do { return try realQwen2Tokenizer.get() } catch {
        Issue.record("the Qwen2 tokenizer is not available at \(URL.qwen2TokenizerFile.path): \(error). Run Ops/model-fetch qwen2-tokenizer.")
        throw error
    }
}

extension URL {
    /// `$EMBER_QWEN2_TOKENIZER_DIR/tokenizer.json`, else next to omni-small, where
    /// `Ops/model-fetch qwen2-tokenizer` writes it.
    static var qwen2TokenizerFile: URL {
        let directory = ProcessInfo.processInfo.environment["EMBER_QWEN2_TOKENIZER_DIR"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
            ?? defaultModelDirectory.deletingLastPathComponent().appendingPathComponent("qwen2-tokenizer")
        return directory.appendingPathComponent("tokenizer.json")
    }
}

/// One corpus line and what `tokenizers` made of it.
struct Qwen2TokenizerCase: Decodable {
    /// Only in `random` (the corpus keeps its texts in corpus.jsonl).
    var text: String?
    let ids: [Int32]
    let decoded: String
    let halfDecoded: String
    var decodedWithoutSpecial: String?

    enum CodingKeys: String, CodingKey {
        case text, ids, decoded
        case halfDecoded = "half_decoded"
        case decodedWithoutSpecial = "decoded_without_special"
    }
}

struct Qwen2TokenizerExpected: Decodable {
    let cases: [Qwen2TokenizerCase]
    let random: [Qwen2TokenizerCase]
    let randomDecode: [RandomDecode]

    /// Ids no text encodes to, and what `tokenizers` decodes them to.
    struct RandomDecode: Decodable {
        let ids: [Int32]
        let decoded: String
        let decodedWithoutSpecial: String

        enum CodingKeys: String, CodingKey {
            case ids, decoded
            case decodedWithoutSpecial = "decoded_without_special"
        }
    }

    enum CodingKeys: String, CodingKey {
        case cases, random
        case randomDecode = "random_decode"
    }

    static func load() throws -> Self {
        try JSONDecoder().decode(Self.self, from: Data(contentsOf: qwen2TokenizerFixtures.appendingPathComponent("expected.json")))
    }
}

func qwen2TokenizerCorpus() throws -> [(text: String, expected: Qwen2TokenizerCase)] {
    let corpus = try String(contentsOf: qwen2TokenizerFixtures.appendingPathComponent("corpus.jsonl"), encoding: .utf8)
        .split(separator: "\n").map { try JSONDecoder().decode(String.self, from: Data($0.utf8)) }
    let expected = try Qwen2TokenizerExpected.load()
    #expect(corpus.count == expected.cases.count, "corpus and expected.json differ in length: re-run Ops/reference/qwen2_tokenizer_fixture.py")
    return Array(zip(corpus, expected.cases))
}

/// Records the first differing id of `text` with the tokens around it; true when equal.
func expectSameIDs(_ tokenizer: Qwen2Tokenizer, _ text: String, _ expected: [Int32], _ what: String) -> Bool {
    let ids = tokenizer.encode(text)
    guard ids != expected else { return true }
    let at = zip(ids, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(ids.count, expected.count)
    Issue.record("""
        \(what) \(String(reflecting: text)): ids differ from index \(at): \
        got \(ids[at...].prefix(8)) (\(String(reflecting: tokenizer.decode(Array(ids[at...].prefix(8)))))), \
        expected \(expected[at...].prefix(8)) (\(String(reflecting: tokenizer.decode(Array(expected[at...].prefix(8))))))
        """)
    return false
}

@Suite("Qwen2 tokenizer: byte-level BPE from tokenizer.json, parity with tokenizers")
struct Qwen2TokenizerTests {
    @Test("every corpus line encodes to the ids tokenizers gives, and decodes back")
    func corpusParity() throws {
        let tokenizer = try loadQwen2Tokenizer()
        let corpus = try qwen2TokenizerCorpus()
        #expect(corpus.count >= 200)
        var mismatches = 0
        for (line, (text, expected)) in corpus.enumerated() {
            if !expectSameIDs(tokenizer, text, expected.ids, "line \(line + 1)") { mismatches += 1 }
            let ids = tokenizer.encode(text)
            #expect(tokenizer.decode(expected.ids) == expected.decoded, "line \(line + 1): decode")
            #expect(tokenizer.decode(Array(expected.ids.prefix(expected.ids.count / 2))) == expected.halfDecoded, "line \(line + 1): decode of the first half")
            #expect(tokenizer.decode(expected.ids, skipSpecialTokens: true) == expected.decodedWithoutSpecial, "line \(line + 1): decode without special tokens")
            // Round trip: exact for NFC text, NFC of it otherwise (tokenizers' decode is the reference).
            #expect(tokenizer.decode(ids) == expected.decoded, "line \(line + 1): decode(encode(x))")
            if text.unicodeScalars.elementsEqual(expected.decoded.unicodeScalars) {
                #expect(tokenizer.decode(ids).unicodeScalars.elementsEqual(text.unicodeScalars), "line \(line + 1): decode(encode(x)) == x")
            }
        }
        #expect(mismatches == 0, "\(mismatches) of \(corpus.count) lines differ")
    }

    @Test("1,000 seeded random texts (marks that reorder, jamo, new code points, added tokens) encode and decode as tokenizers does")
    func randomParity() throws {
        let tokenizer = try loadQwen2Tokenizer()
        let cases = try Qwen2TokenizerExpected.load().random
        #expect(cases.count == 1000)
        var mismatches = 0
        for (index, expected) in cases.enumerated() {
            let text = try #require(expected.text)
            if !expectSameIDs(tokenizer, text, expected.ids, "random \(index)") { mismatches += 1 }
            #expect(tokenizer.decode(expected.ids) == expected.decoded, "random \(index): decode")
            #expect(tokenizer.decode(Array(expected.ids.prefix(expected.ids.count / 2))) == expected.halfDecoded, "random \(index): decode of the first half")
        }
        #expect(mismatches == 0, "\(mismatches) of \(cases.count) random texts differ")
    }

    @Test("500 random id sequences (lone bytes, cut characters, added tokens anywhere) decode as tokenizers does")
    func randomDecode() throws {
        let tokenizer = try loadQwen2Tokenizer()
        let cases = try Qwen2TokenizerExpected.load().randomDecode
        #expect(cases.count == 500)
        for (index, expected) in cases.enumerated() {
            // Scalar comparison: U+FFFD placement matters, canonical equivalence must not hide it.
            #expect(tokenizer.decode(expected.ids).unicodeScalars.elementsEqual(expected.decoded.unicodeScalars),
                    "random ids \(index) \(expected.ids): \(String(reflecting: tokenizer.decode(expected.ids))) vs \(String(reflecting: expected.decoded))")
            #expect(tokenizer.decode(expected.ids, skipSpecialTokens: true).unicodeScalars.elementsEqual(expected.decodedWithoutSpecial.unicodeScalars),
                    "random ids \(index) \(expected.ids) without special tokens")
        }
    }

    @Test("one tokenizer shared by concurrent tasks (one word cache) gives every line its ids")
    func concurrentEncoding() async throws {
        let tokenizer = try loadQwen2Tokenizer()
        let corpus = try qwen2TokenizerCorpus()
        let mismatches = await withTaskGroup(of: Int.self) { group in
            for task in 0..<4 {
                group.addTask {
                    // Each task walks the corpus from another start, so cache writes interleave.
                    (0..<corpus.count).filter { step in
                        let (text, expected) = corpus[(step + task * 67) % corpus.count]
                        return tokenizer.encode(text) != expected.ids
                    }.count
                }
            }
            return await group.reduce(0, +)
        }
        #expect(mismatches == 0)
    }

    @Test("the corpus covers what it is meant to: scripts, emoji sequences, special tokens, odd whitespace")
    func corpusCoverage() throws {
        let tokenizer = try loadQwen2Tokenizer()
        let lines = try qwen2TokenizerCorpus().map(\.text)
        func count(_ predicate: (Unicode.Scalar) -> Bool) -> Int { lines.filter { $0.unicodeScalars.contains(where: predicate) }.count }
        #expect(count { (0x4E00...0x9FFF).contains($0.value) } >= 20, "Chinese")
        #expect(count { (0x3040...0x30FF).contains($0.value) } >= 5, "Japanese kana")
        #expect(count { (0xAC00...0xD7A3).contains($0.value) } >= 5, "Korean")
        #expect(count { (0x0600...0x06FF).contains($0.value) } >= 5, "Arabic")
        #expect(count { (0x0400...0x04FF).contains($0.value) } >= 5, "Cyrillic")
        #expect(count { $0.value == 0x200D } >= 5, "emoji ZWJ sequences")
        #expect(count { [0x0D, 0x09, 0x3000, 0xA0, 0x85, 0x2028].contains($0.value) } >= 10, "odd whitespace")
        let special = tokenizer.addedTokens.map(\.content)
        #expect(lines.filter { line in special.contains { line.contains($0) } }.count >= 20, "added tokens inline")
    }

    @Test("the added tokens have Qwen2-VL's ids and the vocabulary its size")
    func specialTokens() throws {
        let tokenizer = try loadQwen2Tokenizer()
        let expected: [String: Int32] = [
            "<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645, "<|vision_start|>": 151652,
            "<|vision_end|>": 151653, "<|vision_pad|>": 151654, "<|image_pad|>": 151655, "<|video_pad|>": 151656,
        ]
        for (token, id) in expected { #expect(tokenizer.id(ofSpecial: token) == id, "\(token)") }
        #expect(tokenizer.id(ofSpecial: "hello") == nil)
        #expect(tokenizer.id(ofSpecial: "<|im_start") == nil)
        #expect(tokenizer.vocabularySize == 151_669)
        #expect(tokenizer.encode("<|im_start|>user\nhi<|im_end|>") == [151644, 872, 198, 6023, 151645])
        #expect(tokenizer.decode([151644, 872, 198, 6023, 151645], skipSpecialTokens: true) == "user\nhi")
        // Out-of-range ids are skipped, as tokenizers does.
        #expect(tokenizer.decode([-1, 6023, 999_999]) == "hi")
    }

    @Test("long words: the heap merge equals the scan merge (its naive twin)")
    func heapMergeEqualsScan() throws {
        let tokenizer = try loadQwen2Tokenizer()
        var state: UInt64 = 7
        let alphabets: [[UInt8]] = [Array("aeiounstr".utf8), Array("ab ".utf8), Array("的一是不了人我在有他".utf8), Array(0...255)]
        for trial in 0..<200 {
            let alphabet = alphabets[trial % alphabets.count]
            let length = 1 + trial * 3 % 300
            let word: [UInt8] = (0..<length).map { _ in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return alphabet[Int(state >> 33) % alphabet.count]
            }
            var scan = word.map { tokenizer.bpe.idOfByte[Int($0)] }
            var heap = scan
            tokenizer.bpe.mergeByScan(&scan)
            tokenizer.bpe.mergeByHeap(&heap)
            #expect(scan == heap, "trial \(trial), \(length) bytes")
        }
    }

    @Test("a 100,000-letter word without spaces tokenizes (heap merge, no quadratic stall) and decodes back")
    func longWord() throws {
        let tokenizer = try loadQwen2Tokenizer()
        let text = String(repeating: "abcdefghij", count: 10_000)
        let ids = tokenizer.encode(text)
        #expect(ids.count > 1000 && ids.count < 50_000)
        #expect(tokenizer.decode(ids) == text)
    }

    @Test("the pre-tokenizer splits as Qwen2's pattern does")
    func preTokenizer() {
        func pieces(_ text: String) -> [String] {
            let bytes = Array(text.utf8)
            return Qwen2PreTokenizer.split(bytes[...]).map { String(decoding: bytes[$0], as: UTF8.self) }
        }
        // Expected pieces as `tokenizers`' pre_tokenize_str gives them (Ops/reference probes).
        #expect(pieces("it's IT'S we'LL it'ſx") == ["it", "'s", " IT", "'S", " we", "'LL", " it", "'ſ", "x"])
        #expect(pieces("a   \n\n  b") == ["a", "   \n\n", " ", " b"])
        #expect(pieces("x \r\n y") == ["x", " \r\n", " y"])
        #expect(pieces("hello!!!\n\nworld") == ["hello", "!!!\n\n", "world"])
        #expect(pieces(" !!x\t\tx") == [" !!", "x", "\t", "\tx"])
        #expect(pieces("1234 ١٢") == ["1", "2", "3", "4", " ", "١", "٢"])
        #expect(pieces("a\u{85}\u{85}b a\u{1C}\u{1C}b") == ["a", "\u{85}", "\u{85}b", " a", "\u{1C}\u{1C}", "b"])
        #expect(pieces("  ") == ["  "])
        #expect(pieces("") == [])
    }
}

/// Small hand-made tokenizer.json files: merge order, both merge spellings, added tokens, and
/// a typed error for each way a file can be wrong.
@Suite("Qwen2 tokenizer: tokenizer.json loading and BPE rules on small vocabularies")
struct Qwen2TokenizerFileTests {
    /// A byte-level vocabulary (the 256 byte tokens) plus `extra`, with `merges` and added tokens.
    static func json(extra: [String] = [], merges: [Any] = [], added: [[String: Any]] = [], patch: (inout [String: Any]) -> Void = { _ in }) throws -> Data {
        var vocab: [String: Int] = [:]
        for byte in 0..<256 { vocab[String(ByteLevel.characterOfByte[byte])] = byte }
        for token in extra where vocab[token] == nil { vocab[token] = vocab.count }
        var root: [String: Any] = [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(),
            "added_tokens": added,
            "normalizer": ["type": "NFC"],
            "pre_tokenizer": ["type": "Sequence", "pretokenizers": [
                ["type": "Split", "pattern": ["Regex": Qwen2PreTokenizer.pattern], "behavior": "Isolated", "invert": false],
                ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false],
            ]],
            "post_processor": ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false],
            "decoder": ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false],
            "model": [
                "type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": "", "end_of_word_suffix": "",
                "fuse_unk": false, "byte_fallback": false, "ignore_merges": false, "vocab": vocab, "merges": merges,
            ] as [String: Any],
        ]
        patch(&root)
        return try JSONSerialization.data(withJSONObject: root)
    }

    static func model(_ root: inout [String: Any], _ change: (inout [String: Any]) -> Void) {
        var model = root["model"] as! [String: Any]
        change(&model)
        root["model"] = model
    }

    func tokens(_ tokenizer: Qwen2Tokenizer, _ text: String) -> [String] {
        tokenizer.encode(text).map { tokenizer.decode([$0]) }
    }

    @Test("merges apply lowest rank first, leftmost on ties; both merge spellings read the same")
    func mergeOrder() throws {
        let extra = ["aa", "bc", "ab", "abc", "aaa"]
        let pairs = [["b", "c"], ["a", "a"], ["a", "b"], ["a", "bc"], ["aa", "a"]]
        let asLists = try Qwen2Tokenizer(json: Self.json(extra: extra, merges: pairs))
        let asStrings = try Qwen2Tokenizer(json: Self.json(extra: extra, merges: pairs.map { $0.joined(separator: " ") }))
        for tokenizer in [asLists, asStrings] {
            #expect(tokens(tokenizer, "abc") == ["abc"])  // b c (rank 0) before a b (rank 2)
            #expect(tokens(tokenizer, "aaaa") == ["aa", "aa"])  // leftmost a a first, then the next
            #expect(tokens(tokenizer, "aaa") == ["aaa"])
            #expect(tokens(tokenizer, "ab abc") == ["ab", " ", "abc"])  // " " + "abc": no merge joins the space
            #expect(tokenizer.vocabularySize == 261)
        }
        #expect(asLists.encode("abcaaa") == asStrings.encode("abcaaa"))
    }

    @Test("added tokens: leftmost-longest on the raw text, normalized ones after NFC, special ones skippable")
    func addedTokens() throws {
        let added: [[String: Any]] = [
            ["id": 300, "content": "<x>", "special": true, "normalized": false, "lstrip": false, "rstrip": false, "single_word": false],
            ["id": 301, "content": "<x><y>", "special": true, "normalized": false],
            ["id": 302, "content": "é!", "special": false, "normalized": true],
        ]
        let tokenizer = try Qwen2Tokenizer(json: Self.json(added: added))
        let a = Int32(UInt8(ascii: "a"))
        #expect(tokenizer.encode("a<x>a") == [a, 300, a])
        #expect(tokenizer.encode("<x><y><x>") == [301, 300])
        #expect(tokenizer.encode("<x<x>>") == [Int32(UInt8(ascii: "<")), Int32(UInt8(ascii: "x")), 300, Int32(UInt8(ascii: ">"))])
        #expect(tokenizer.encode("e\u{301}!") == [302])  // matched after NFC composes é
        #expect(tokenizer.id(ofSpecial: "<x><y>") == 301)
        #expect(tokenizer.decode([a, 300, 302], skipSpecialTokens: true) == "aé!")
        #expect(tokenizer.decode([a, 300, 302]) == "a<x>é!")
        #expect(tokenizer.vocabularySize == 303)
    }

    @Test("each malformed tokenizer.json is a typed error naming the key")
    func malformedFiles() throws {
        func key(_ data: Data) -> String? {
            do {
                _ = try Qwen2Tokenizer(json: data)
                return nil
            } catch {
                guard case .invalidConfig(let key, _) = error else { return "\(error)" }
                return key
            }
        }
        #expect(key(try Self.json()) == nil)
        #expect(key(Data("{\"model\": ".utf8)) == "tokenizer.json")
        #expect(key(Data("[1, 2]".utf8)) == "tokenizer.json")
        #expect(key(try Self.json { $0["model"] = nil }) == "model")
        #expect(key(try Self.json { Self.model(&$0) { $0["type"] = "WordPiece" } }) == "model.type")
        #expect(key(try Self.json { Self.model(&$0) { $0["unk_token"] = "<unk>" } }) == "model.unk_token")
        #expect(key(try Self.json { Self.model(&$0) { $0["dropout"] = 0.1 } }) == "model.dropout")
        #expect(key(try Self.json { Self.model(&$0) { $0["byte_fallback"] = true } }) == "model.byte_fallback")
        #expect(key(try Self.json { Self.model(&$0) { $0["continuing_subword_prefix"] = "##" } }) == "model.continuing_subword_prefix")
        #expect(key(try Self.json { Self.model(&$0) { $0["merges"] = nil } }) == "model.merges")
        #expect(key(try Self.json { Self.model(&$0) { $0["vocab"] = ["a": 0] } }) == "model.vocab")
        #expect(key(try Self.json { Self.model(&$0) { var v = $0["vocab"] as! [String: Int]; v["zz"] = 5; $0["vocab"] = v } }) == "model.vocab")
        #expect(key(try Self.json { Self.model(&$0) { var v = $0["vocab"] as! [String: Int]; v["zz"] = -3; $0["vocab"] = v } }) == "model.vocab[zz]")
        #expect(key(try Self.json(merges: ["a b c"])) == "model.merges[0]")
        #expect(key(try Self.json(extra: ["ab"], merges: ["a b", "q zz"])) == "model.merges[1]")
        #expect(key(try Self.json(merges: [["a", "b"]])) == "model.merges[0]")  // "ab" is not a token
        #expect(key(try Self.json(merges: [42])) == "model.merges[0]")
        #expect(key(try Self.json { $0["normalizer"] = ["type": "NFKC"] }) == "normalizer")
        #expect(key(try Self.json { $0["decoder"] = ["type": "WordPiece"] }) == "decoder")
        #expect(key(try Self.json { $0["pre_tokenizer"] = ["type": "ByteLevel"] }) == "pre_tokenizer")
        #expect(key(try Self.json {
            var steps = ($0["pre_tokenizer"] as! [String: Any])["pretokenizers"] as! [[String: Any]]
            steps[0]["pattern"] = ["Regex": "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"]
            $0["pre_tokenizer"] = ["type": "Sequence", "pretokenizers": steps]
        }) == "pre_tokenizer.pretokenizers[0].pattern")
        #expect(key(try Self.json(added: [["id": 300, "content": "<x>", "special": true, "lstrip": true]])) == "added_tokens[0].lstrip")
        #expect(key(try Self.json(added: [["id": 300, "content": ""]])) == "added_tokens[0]")
        #expect(key(try Self.json(added: [["id": 7, "content": "a"]])) == "added_tokens[0]")  // "a" is id 97
        #expect(key(try Self.json(added: [["id": 2_000_000_000, "content": "<huge>"]])) == "added_tokens[0]")  // no 2-billion-entry table
        #expect(key(try Self.json { Self.model(&$0) { var v = $0["vocab"] as! [String: Int]; v["zz"] = 1 << 30; $0["vocab"] = v } }) == "model.vocab[zz]")
        let missing = URL(fileURLWithPath: "/nonexistent/tokenizer.json")
        #expect(throws: ModelError.self) { try Qwen2Tokenizer(tokenizerJSON: missing) }
        do {
            _ = try Qwen2Tokenizer(tokenizerJSON: missing)
        } catch {
            guard case .fileUnreadable(let path, _) = error else { Issue.record("got \(error)"); return }
            #expect(path == missing.path)
        }
    }
}
