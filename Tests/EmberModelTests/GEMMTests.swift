import Testing
@testable import EmberModel

/// The naive triple loop every BLAS call is checked against.
private func naiveProduct(
    _ a: [Float], _ b: [Float], m: Int, n: Int, k: Int, transA: Bool, transB: Bool
) -> [Float] {
    var c = [Float](repeating: 0, count: m * n)
    for i in 0..<m {
        for j in 0..<n {
            var sum: Double = 0
            for p in 0..<k {
                let aValue = transA ? a[p * m + i] : a[i * k + p]
                let bValue = transB ? b[j * k + p] : b[p * n + j]
                sum += Double(aValue) * Double(bValue)
            }
            c[i * n + j] = Float(sum)
        }
    }
    return c
}

@Suite("OpenBLAS binding")
struct GEMMTests {
    @Test("cblas_sgemm matches the naive product on odd shapes", arguments: [
        (1, 1, 1), (3, 5, 7), (17, 33, 65), (64, 384, 1), (129, 7, 300),
    ])
    func matchesNaiveProduct(shape: (Int, Int, Int)) {
        let (m, n, k) = shape
        for (transA, transB) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = pseudoRandom(m * k, seed: UInt64(m * 31 + k))
            let b = pseudoRandom(k * n, seed: UInt64(n * 17 + k))
            var c = [Float](repeating: .nan, count: m * n)
            a.withUnsafeBufferPointer { a in
                b.withUnsafeBufferPointer { b in
                    c.withUnsafeMutableBufferPointer { c in
                        gemm(
                            transA ? .transposed : .none, transB ? .transposed : .none,
                            m: m, n: n, k: k, a: a.baseAddress!, b: b.baseAddress!, c: c.baseAddress!)
                    }
                }
            }
            let expected = naiveProduct(a, b, m: m, n: n, k: k, transA: transA, transB: transB)
            let maxDiff = zip(c, expected).map { abs($0 - $1) }.max() ?? 0
            #expect(maxDiff <= 1e-4 * Float(k).squareRoot(), "m=\(m) n=\(n) k=\(k) transA=\(transA) transB=\(transB): max abs diff \(maxDiff)")
        }
    }

    @Test("alpha and beta accumulate into C")
    func alphaBeta() {
        let a: [Float] = [1, 2, 3, 4]  // 2x2
        let b: [Float] = [5, 6, 7, 8]  // 2x2
        var c: [Float] = [1, 1, 1, 1]
        gemm(m: 2, n: 2, k: 2, alpha: 2, a: a, b: b, beta: 10, c: &c)
        // 2 * [[19, 22], [43, 50]] + 10
        #expect(c == [48, 54, 96, 110])
    }

    @Test("thread count is configurable")
    func threadCount() {
        let original = BLASThreads.count
        defer { BLASThreads.count = original }
        BLASThreads.count = 1
        #expect(BLASThreads.count == 1)
        #expect(BLASThreads.configuration.contains("OpenBLAS"))
    }
}
