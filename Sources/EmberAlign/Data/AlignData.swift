import Foundation

/// Which split a signal belongs to. Cold items appear in no training or validation signal.
public enum AlignSplit: String, Sendable, Codable {
    case train, validation, cold
}

/// The training signals of `ember align`, as the platform exports them (README
/// "Alignment"): one JSON object per line in each file of a directory.
///
/// | file | line |
/// |---|---|
/// | `items.jsonl` | `{"item_id", "topic", "split": "train" \| "validation" \| "cold"}` |
/// | `id_vectors.jsonl` | `{"item_id", "vector": [float]}`: the recommender's ID embeddings |
/// | `sequences.jsonl` | `{"user_id", "items": [ids in watch order], "split"}` |
/// | `i2i.jsonl` | `{"a", "b", "weight", "split"}`: co-engagement pairs |
/// | `q2i.jsonl` | `{"query", "item_id", "split"}`: searches and the item watched |
/// | `eval/next_item.jsonl` | `{"user_id", "history": [ids], "target": cold id}` |
/// | `eval/id_neighbours.jsonl` | `{"item_id": cold id, "neighbours": [ids]}` |
///
/// A missing file is an absent source; a malformed line is an error naming file and line.
public struct AlignData: Sendable {
    public struct Item: Sendable, Codable, Equatable {
        public var itemID: String
        public var topic: String?
        public var split: AlignSplit
        enum CodingKeys: String, CodingKey { case itemID = "item_id", topic, split }
        public init(itemID: String, topic: String?, split: AlignSplit) {
            self.itemID = itemID
            self.topic = topic
            self.split = split
        }
    }
    public struct IDVector: Sendable, Codable {
        public var itemID: String
        public var vector: [Float]
        enum CodingKeys: String, CodingKey { case itemID = "item_id", vector }
    }
    public struct Sequence: Sendable, Codable {
        public var userID: String
        public var items: [String]
        public var split: AlignSplit
        enum CodingKeys: String, CodingKey { case userID = "user_id", items, split }
    }
    public struct CoEngagement: Sendable, Codable {
        public var a: String
        public var b: String
        public var weight: Double?
        public var split: AlignSplit
    }
    public struct Query: Sendable, Codable {
        public var query: String
        public var itemID: String
        public var split: AlignSplit
        enum CodingKeys: String, CodingKey { case query, itemID = "item_id", split }
    }
    public struct NextItem: Sendable, Codable {
        public var userID: String
        public var history: [String]
        public var target: String
        enum CodingKeys: String, CodingKey { case userID = "user_id", history, target }
    }
    public struct Neighbours: Sendable, Codable {
        public var itemID: String
        public var neighbours: [String]
        enum CodingKeys: String, CodingKey { case itemID = "item_id", neighbours }
    }

    public var items: [Item] = []
    public var idVectors: [IDVector] = []
    public var sequences: [Sequence] = []
    public var coEngagements: [CoEngagement] = []
    public var queries: [Query] = []
    public var nextItems: [NextItem] = []
    public var neighbours: [Neighbours] = []

    public init() {}

    /// Reads every file that exists under `directory`.
    public init(directory: URL) throws(AlignDataError) {
        items = try Self.lines(directory.appending(path: "items.jsonl"))
        guard !items.isEmpty else { throw AlignDataError("\(directory.appending(path: "items.jsonl").path): no items (the file is required)") }
        idVectors = try Self.lines(directory.appending(path: "id_vectors.jsonl"))
        sequences = try Self.lines(directory.appending(path: "sequences.jsonl"))
        coEngagements = try Self.lines(directory.appending(path: "i2i.jsonl"))
        queries = try Self.lines(directory.appending(path: "q2i.jsonl"))
        nextItems = try Self.lines(directory.appending(path: "eval/next_item.jsonl"))
        neighbours = try Self.lines(directory.appending(path: "eval/id_neighbours.jsonl"))
    }

    /// The split of every item.
    public var splitOf: [String: AlignSplit] { Dictionary(items.map { ($0.itemID, $0.split) }, uniquingKeysWith: { $1 }) }

    static func lines<T: Decodable>(_ url: URL) throws(AlignDataError) -> [T] {
        guard FileManager.default.fileExists(atPath: url.path) else { return [] }
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch { throw AlignDataError("\(url.path): \(error)") }
        let decoder = JSONDecoder()
        var out: [T] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
        where !line.allSatisfy(\.isWhitespace) {
            do {
                out.append(try decoder.decode(T.self, from: Data(line.utf8)))
            } catch {
                throw AlignDataError("\(url.path):\(number + 1): \(Self.reason(error))")
            }
        }
        return out
    }

    private static func reason(_ error: any Error) -> String {
        switch error as? DecodingError {
        case .keyNotFound(let key, _)?: "missing \(key.stringValue)"
        case .typeMismatch(_, let context)?, .dataCorrupted(let context)?, .valueNotFound(_, let context)?:
            "\(context.codingPath.map(\.stringValue).joined(separator: ".")): \(context.debugDescription)"
        default: "not a JSON object: \(error)"
        }
    }
}

public struct AlignDataError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
