import EmberModel

/// The cold-start figures of README "Alignment": for items no signal has seen,
///
/// - next item: a user's history (its last `historyLength` items, averaged as in
///   seq2item) retrieves among every item but the history ("all"), and among the cold
///   items only ("cold"); recall@k of the cold item they watched next;
/// - ID neighbours: a cold item retrieves among the train and validation items; recall@k
///   of its true nearest items in the recommender's ID space (as the simulator knows them).
///
/// Both for the raw fused vector and for a head at each of its Matryoshka sizes.
public struct ColdStartEvaluation: Sendable {
    public struct Figures: Sendable, Equatable {
        /// `raw` or the size (`256`).
        public var representation: String
        public var dims: Int
        /// Among every item but the history.
        public var nextItemAll: Double
        /// Among the cold items.
        public var nextItem: Double
        public var idNeighbours: Double
    }

    public let k: Int
    public let historyLength: Int
    private let nextQueries: [Float]
    private let nextRelevant: [[Int]]
    private let nextRelevantAll: [[Int]]
    private let nextHistory: [[Int]]
    private let coldRows: [Int]
    private let warmRows: [Int]
    private let neighbourRelevant: [[Int]]
    private let items: ItemVectors
    public let nextItemCases: Int
    public let neighbourCases: Int

    public init(data: AlignData, items: ItemVectors, k: Int = 50, historyLength: Int = 10) {
        self.k = k
        self.historyLength = historyLength
        self.items = items
        let split = data.splitOf
        coldRows = (0..<items.count).filter { split[items.itemIDs[$0]] == .cold }
        warmRows = (0..<items.count).filter { split[items.itemIDs[$0]] == .train || split[items.itemIDs[$0]] == .validation }
        let coldIndex = Dictionary(uniqueKeysWithValues: coldRows.enumerated().map { ($1, $0) })
        let warmIndex = Dictionary(uniqueKeysWithValues: warmRows.enumerated().map { ($1, $0) })
        var queries: [Float] = [], relevant: [[Int]] = [], relevantAll: [[Int]] = [], histories: [[Int]] = []
        for case let entry in data.nextItems {
            guard let row = items.rowOf[entry.target], let target = coldIndex[row] else { continue }
            let history = entry.history.suffix(historyLength).compactMap { items.rowOf[$0] }
            guard !history.isEmpty else { continue }
            queries += items.normalizedMean(history)
            relevant.append([target])
            relevantAll.append([row])
            histories.append(entry.history.compactMap { items.rowOf[$0] })
        }
        nextQueries = queries
        nextRelevant = relevant
        nextRelevantAll = relevantAll
        nextHistory = histories
        nextItemCases = relevant.count
        var byCold = [[Int]](repeating: [], count: coldRows.count)
        for entry in data.neighbours {
            guard let c = items.rowOf[entry.itemID].flatMap({ coldIndex[$0] }) else { continue }
            byCold[c] = entry.neighbours.compactMap { items.rowOf[$0].flatMap { warmIndex[$0] } }
        }
        neighbourRelevant = byCold
        neighbourCases = byCold.filter { !$0.isEmpty }.count
    }

    public func raw() -> Figures {
        let cold = items.gather(coldRows), warm = items.gather(warmRows)
        return figures("raw", dims: items.dim, queries: nextQueries, cold: cold, warm: warm, all: items.values)
    }

    public func head(_ head: ProjectionHead) -> [Figures] {
        let queryCount = nextQueries.count / items.dim
        return head.matryoshka.map { d in
            let queries = queryCount == 0 ? [] : head.embed(rows: nextQueries, count: queryCount, dims: d)
            let cold = coldRows.isEmpty ? [] : head.embed(rows: items.gather(coldRows), count: coldRows.count, dims: d)
            let warm = warmRows.isEmpty ? [] : head.embed(rows: items.gather(warmRows), count: warmRows.count, dims: d)
            let all = head.embed(rows: items.values, count: items.count, dims: d)
            return figures("\(d)", dims: d, queries: queries, cold: cold, warm: warm, all: all)
        }
    }

    private func figures(_ name: String, dims: Int, queries: [Float], cold: [Float], warm: [Float], all: [Float]) -> Figures {
        Figures(
            representation: name, dims: dims,
            nextItemAll: Retrieval.recall(queries: queries, candidates: all, dim: dims, relevant: nextRelevantAll, k: k, excluded: nextHistory),
            nextItem: Retrieval.recall(queries: queries, candidates: cold, dim: dims, relevant: nextRelevant, k: k),
            idNeighbours: Retrieval.recall(queries: cold, candidates: warm, dim: dims, relevant: neighbourRelevant, k: k))
    }
}
