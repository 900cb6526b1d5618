import EmberModel

/// Brute-force retrieval figures by dot product (rows are unit vectors, so cosine).
public enum Retrieval {
    /// Mean over queries with a non-empty relevant set of |top-k ∩ relevant| / |relevant|.
    /// queries (nq, dim), candidates (nc, dim); `relevant[q]` are candidate rows;
    /// `excluded[q]` candidate rows that query may not retrieve (its own history).
    public static func recall(queries: [Float], candidates: [Float], dim: Int, relevant: [[Int]], k: Int, excluded: [[Int]]? = nil) -> Double {
        let nq = queries.count / dim, nc = candidates.count / dim
        guard nq > 0, nc > 0 else { return 0 }
        var total = 0.0, counted = 0
        let chunk = 256
        var start = 0
        while start < nq {
            let rows = min(chunk, nq - start)
            var scores = [Float](repeating: 0, count: rows * nc)
            queries.withUnsafeBufferPointer { q in
                candidates.withUnsafeBufferPointer { c in
                    scores.withUnsafeMutableBufferPointer { s in
                        gemm(.none, .transposed, m: rows, n: nc, k: dim, a: q.baseAddress! + start * dim, b: c.baseAddress!, c: s.baseAddress!)
                    }
                }
            }
            for r in 0..<rows where !relevant[start + r].isEmpty {
                for e in excluded?[start + r] ?? [] { scores[r * nc + e] = -.infinity }
                let top = Set(topIndices(scores[(r * nc)..<((r + 1) * nc)], k: min(k, nc)))
                let wanted = relevant[start + r]
                total += Double(wanted.filter(top.contains).count) / Double(wanted.count)
                counted += 1
            }
            start += rows
        }
        return counted == 0 ? 0 : total / Double(counted)
    }
}
