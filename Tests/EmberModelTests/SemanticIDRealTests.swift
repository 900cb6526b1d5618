import Foundation
import Testing
@testable import EmberModel

/// Semantic IDs and compact encodings on real omni-small embeddings of generated items
/// (titles and tags: the text tower; CI has the model, Ops/test fetches it).
@Suite("Semantic IDs on real omni-small embeddings")
struct SemanticIDRealTests {
    static let count = 240

    static let embedded: Result<[Float], any Error> = Result {
        let engine = try loadRealEngine()
        let items = GeneratedCatalog.items(count: count, seed: 1)
        return try engine.embed(items.map { ItemInput(text: $0.text) }).flatMap(\.vector)
    }

    @Test("prefix retrieval with a 3-level codebook keeps most exact cosine neighbours")
    func prefixRecall() throws {
        let vectors = try Self.embedded.get()
        let dim = vectors.count / Self.count
        let codebook = try ResidualKMeans(.init(sizes: [16, 16, 16], seed: 0)).train(vectors, count: Self.count, dim: dim, modelID: "omni-small@test")
        let codes = try codebook.assign(vectors, count: Self.count)
        let truth = RetrievalEvaluation.neighbours(vectors, count: Self.count, dim: dim, k: 10)
        let recall = RetrievalEvaluation.recall(
            RetrievalEvaluation.prefixNeighbours(queries: vectors, codes: codes, codebook: codebook, k: 10), truth: truth)
        print("prefix recall@10 on \(Self.count) real embeddings, 3×16 codes: \(recall); relative error \(codebook.statistics.relativeError)")
        #expect(recall >= 0.5, "prefix recall@10 \(recall) (random: \(10.0 / Double(Self.count)))")
    }

    @Test("int8 and binary encodings keep exact cosine neighbours (recall@10 vs f32)")
    func encodingRecall() throws {
        let vectors = try Self.embedded.get()
        let dim = vectors.count / Self.count
        let truth = RetrievalEvaluation.neighbours(vectors, count: Self.count, dim: dim, k: 10)
        var recalls: [VectorEncoding: Double] = [:]
        for encoding in VectorEncoding.allCases {
            var decoded: [Float] = []
            for i in 0..<Self.count {
                let v = Array(vectors[(i * dim)..<((i + 1) * dim)])
                let e = encoding.encode(v)
                decoded += try #require(encoding.decode(e.bytes, dim: dim, scale: e.scale))
            }
            recalls[encoding] = RetrievalEvaluation.recall(RetrievalEvaluation.neighbours(decoded, count: Self.count, dim: dim, k: 10), truth: truth)
        }
        print("recall@10 vs f32 on \(Self.count) real embeddings: \(recalls.sorted { $0.key.rawValue < $1.key.rawValue })")
        #expect(recalls[.f32] == 1)
        #expect(recalls[.f16]! >= 0.99)
        #expect(recalls[.int8]! >= 0.95)
        #expect(recalls[.binary]! >= 0.6)
    }
}
