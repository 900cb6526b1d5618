/// Measures what a compact form of the embeddings costs in retrieval quality: recall@k
/// of the exact cosine neighbours (all vectors unit length, so cosine = dot product).
/// Used by the tests and `ember bench semantic`; N × N similarities by one GEMM, so
/// meant for evaluation sets of a few thousand vectors.
public enum RetrievalEvaluation {
    /// The `k` most similar other rows of each row of `vectors` (n, dim) by dot product;
    /// ties go to the lower index.
    public static func neighbours(_ vectors: [Float], count n: Int, dim: Int, k: Int) -> [[Int]] {
        var similarity = [Float](repeating: 0, count: n * n)
        vectors.withUnsafeBufferPointer { v in
            similarity.withUnsafeMutableBufferPointer { s in
                gemm(.none, .transposed, m: n, n: n, k: dim, a: v.baseAddress!, b: v.baseAddress!, c: s.baseAddress!)
            }
        }
        return (0..<n).map { q in top(k, of: n, excluding: q) { similarity[q * n + $0] } }
    }

    /// Neighbours as a semantic-ID index finds them: other items ranked by how many
    /// leading codes they share with the query, ties by the query's dot product with
    /// their reconstruction (all such an index stores is the codes).
    public static func prefixNeighbours(queries: [Float], codes: [[Int]], codebook: Codebook, k: Int) -> [[Int]] {
        let n = codes.count, dim = codebook.dim
        var reconstructions = [Float]()
        reconstructions.reserveCapacity(n * dim)
        for c in codes { reconstructions += codebook.reconstruct(c) }
        var similarity = [Float](repeating: 0, count: n * n)
        queries.withUnsafeBufferPointer { q in
            reconstructions.withUnsafeBufferPointer { r in
                similarity.withUnsafeMutableBufferPointer { s in
                    gemm(.none, .transposed, m: n, n: n, k: dim, a: q.baseAddress!, b: r.baseAddress!, c: s.baseAddress!)
                }
            }
        }
        return (0..<n).map { q in
            top(k, of: n, excluding: q) { j in
                let shared = zip(codes[q], codes[j]).prefix { $0 == $1 }.count
                // The shared prefix dominates; similarity (≤ 1 in magnitude for unit vectors) breaks ties.
                return Float(shared) * 4 + similarity[q * n + j]
            }
        }
    }

    /// Mean over queries of |found ∩ truth| / |truth|.
    public static func recall(_ found: [[Int]], truth: [[Int]]) -> Double {
        guard !truth.isEmpty else { return 0 }
        var total = 0.0
        for (f, t) in zip(found, truth) where !t.isEmpty {
            total += Double(Set(f).intersection(t).count) / Double(t.count)
        }
        return total / Double(truth.count)
    }

    static func top(_ k: Int, of n: Int, excluding q: Int, score: (Int) -> Float) -> [Int] {
        let scored = (0..<n).filter { $0 != q }.map { ($0, score($0)) }
        return scored.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }.prefix(k).map(\.0)
    }
}
