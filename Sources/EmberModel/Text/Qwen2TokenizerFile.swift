// Reads a Hugging Face tokenizer.json and checks it is the pipeline Qwen2Tokenizer implements:
// NFC normalizer, Sequence[Split(Qwen2 pattern, Isolated), ByteLevel(use_regex: false)]
// pre-tokenizer, ByteLevel decoder, BPE model without dropout, unknown token or byte
// fallback. Anything else is refused with the key that differs, rather than tokenized
// differently from `tokenizers`.
import Foundation

/// The parts of a tokenizer.json the Qwen2 tokenizer uses, checked.
struct Qwen2TokenizerFile {
    var vocabulary: [String: Int32] = [:]
    var merges: [(String, String)] = []
    var ignoreMerges = false
    var addedTokens: [Qwen2AddedToken] = []

    init(json data: Data) throws(ModelError) {
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw ModelError.invalidConfig(key: "tokenizer.json", reason: "not JSON: \(error.localizedDescription)")
        }
        guard let root = object as? [String: Any] else { throw ModelError.invalidConfig(key: "tokenizer.json", reason: "not a JSON object") }
        try Self.checkPipeline(root)
        guard let model = root["model"] as? [String: Any] else { throw ModelError.invalidConfig(key: "model", reason: "missing") }
        try readModel(model)
        try readAddedTokens(root["added_tokens"])
    }

    private static func checkPipeline(_ root: [String: Any]) throws(ModelError) {
        let normalizer = root["normalizer"] as? [String: Any]
        if root["normalizer"] != nil, !(root["normalizer"] is NSNull), normalizer?["type"] as? String != "NFC" {
            throw ModelError.invalidConfig(key: "normalizer", reason: "\(describe(root["normalizer"])) is not supported: Qwen2's is NFC")
        }
        let steps = (root["pre_tokenizer"] as? [String: Any]).flatMap { $0["type"] as? String == "Sequence" ? $0["pretokenizers"] as? [[String: Any]] : nil }
        guard let steps, steps.count == 2 else {
            throw ModelError.invalidConfig(key: "pre_tokenizer", reason: "\(describe(root["pre_tokenizer"])) is not Qwen2's Sequence of Split and ByteLevel")
        }
        let split = steps[0]
        let pattern = (split["pattern"] as? [String: Any])?["Regex"] as? String
        guard split["type"] as? String == "Split", split["behavior"] as? String == "Isolated", split["invert"] as? Bool != true else {
            throw ModelError.invalidConfig(key: "pre_tokenizer.pretokenizers[0]", reason: "\(describe(split)) is not an Isolated Split")
        }
        guard pattern == Qwen2PreTokenizer.pattern else {
            throw ModelError.invalidConfig(key: "pre_tokenizer.pretokenizers[0].pattern", reason: "\(pattern ?? "no Regex") is not Qwen2's split pattern")
        }
        let byteLevel = steps[1]
        guard byteLevel["type"] as? String == "ByteLevel", byteLevel["use_regex"] as? Bool == false, byteLevel["add_prefix_space"] as? Bool != true else {
            throw ModelError.invalidConfig(key: "pre_tokenizer.pretokenizers[1]", reason: "\(describe(byteLevel)) is not ByteLevel without regex and prefix space")
        }
        guard (root["decoder"] as? [String: Any])?["type"] as? String == "ByteLevel" else {
            throw ModelError.invalidConfig(key: "decoder", reason: "\(describe(root["decoder"])) is not ByteLevel")
        }
    }

    private mutating func readModel(_ model: [String: Any]) throws(ModelError) {
        guard model["type"] as? String == "BPE" else {
            throw ModelError.invalidConfig(key: "model.type", reason: "\(describe(model["type"])) is not supported: Qwen2's model is BPE")
        }
        if let dropout = model["dropout"], !(dropout is NSNull) {
            throw ModelError.invalidConfig(key: "model.dropout", reason: "\(dropout) is not supported (inference uses none)")
        }
        if let unknown = model["unk_token"], !(unknown is NSNull) {
            throw ModelError.invalidConfig(key: "model.unk_token", reason: "\(unknown) is not supported: byte-level BPE needs none")
        }
        if model["byte_fallback"] as? Bool == true {
            throw ModelError.invalidConfig(key: "model.byte_fallback", reason: "true is not supported")
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let affix = model[key], !(affix is NSNull), affix as? String != "" {
                throw ModelError.invalidConfig(key: "model.\(key)", reason: "\(affix) is not supported")
            }
        }
        ignoreMerges = model["ignore_merges"] as? Bool ?? false
        guard let vocab = model["vocab"] as? [String: Any], !vocab.isEmpty else {
            throw ModelError.invalidConfig(key: "model.vocab", reason: "missing or empty")
        }
        var tokenOfID: [Int32: String] = [:]
        vocabulary.reserveCapacity(vocab.count)
        for (token, value) in vocab {
            guard let id = Self.tokenID(value) else {
                throw ModelError.invalidConfig(key: "model.vocab[\(token)]", reason: "\(value) is not an id in 0..<\(Self.idLimit)")
            }
            if let other = tokenOfID.updateValue(token, forKey: id) {
                let pair = [other, token].sorted().map { "\"\($0)\"" }.joined(separator: " and ")
                throw ModelError.invalidConfig(key: "model.vocab", reason: "id \(id) is used by both \(pair)")
            }
            vocabulary[token] = id
        }
        guard let list = model["merges"] as? [Any] else { throw ModelError.invalidConfig(key: "model.merges", reason: "missing") }
        merges.reserveCapacity(list.count)
        for (index, entry) in list.enumerated() {
            // Two spellings: "a b" (tokenizers < 0.20) and ["a", "b"].
            if let line = entry as? String {
                let parts = line.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw ModelError.invalidConfig(key: "model.merges[\(index)]", reason: "\"\(line)\" is not two tokens separated by one space") }
                merges.append((String(parts[0]), String(parts[1])))
            } else if let pair = entry as? [String], pair.count == 2 {
                merges.append((pair[0], pair[1]))
            } else {
                throw ModelError.invalidConfig(key: "model.merges[\(index)]", reason: "\(entry) is neither \"a b\" nor [a, b]")
            }
        }
    }

    private mutating func readAddedTokens(_ value: Any?) throws(ModelError) {
        guard let value, !(value is NSNull) else { return }
        guard let list = value as? [[String: Any]] else { throw ModelError.invalidConfig(key: "added_tokens", reason: "not a list of objects") }
        for (index, entry) in list.enumerated() {
            let key = "added_tokens[\(index)]"
            guard let id = Self.tokenID(entry["id"] as Any), let content = entry["content"] as? String, !content.isEmpty else {
                throw ModelError.invalidConfig(key: key, reason: "needs an id in 0..<\(Self.idLimit) and a non-empty content")
            }
            for flag in ["lstrip", "rstrip", "single_word"] where entry[flag] as? Bool == true {
                throw ModelError.invalidConfig(key: "\(key).\(flag)", reason: "true is not supported (Qwen2's added tokens match their exact text)")
            }
            if let existing = vocabulary[content], existing != id {
                throw ModelError.invalidConfig(key: key, reason: "\(content) is id \(id) but the vocabulary has it as \(existing)")
            }
            let special = entry["special"] as? Bool ?? false
            addedTokens.append(Qwen2AddedToken(id: id, content: content, special: special, normalized: entry["normalized"] as? Bool ?? !special))
        }
    }

    /// Ids stay below this (Qwen's largest is 151,668): a file with a huge id would make the
    /// id-indexed decode table allocate gigabytes.
    static let idLimit = 1 << 22

    /// A JSON number that is a whole id in 0..<idLimit.
    private static func tokenID(_ value: Any) -> Int32? {
        guard let id = value as? Int, id >= 0, id < idLimit else { return nil }
        return Int32(id)
    }

}

/// A JSON value in an error message: null, an object's type, or the value.
private func describe(_ value: Any?) -> String {
    guard let value, !(value is NSNull) else { return "null" }
    if let object = value as? [String: Any], let type = object["type"] { return "type \(type)" }
    return "\(value)"
}
