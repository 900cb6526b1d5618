import COpenBLAS
import Dispatch

/// Whether an operand is used as stored or transposed.
package enum Transpose: Sendable {
    case none, transposed

    var cblas: CBLAS_TRANSPOSE { self == .none ? CblasNoTrans : CblasTrans }
}

/// `C = alpha * op(A) · op(B) + beta * C` in single precision, all matrices row-major.
///
/// Shapes: op(A) is (m, k), op(B) is (k, n), C is (m, n). A stored untransposed is
/// (m, k) with row stride `lda` (default k); stored transposed it is (k, m) with
/// default stride m. Likewise B is (k, n) or, transposed, (n, k). Every GEMM in Ember
/// goes through here so BLAS sees the largest matrices the caller can batch.
///
/// `threads` > 1 splits C into row blocks (or column blocks when n > m) of whole
/// 16-row/column tiles, one single-threaded sgemm each (see Parallel.swift), when each
/// block is large enough: every element is then the same dot product over k, computed
/// by the same kernel, as in one call, so results do not depend on `threads`.
package func gemm(
    _ transA: Transpose = .none, _ transB: Transpose = .none,
    m: Int, n: Int, k: Int,
    alpha: Float = 1, a: UnsafePointer<Float>, lda: Int? = nil,
    b: UnsafePointer<Float>, ldb: Int? = nil,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int? = nil,
    threads: Int = 1
) {
    let lda = lda ?? (transA == .none ? k : m)
    let ldb = ldb ?? (transB == .none ? n : k)
    let ldc = ldc ?? n
    let profile = GEMMProfile.shared
    let profiling = profile.enabled
    let start = profiling ? DispatchTime.now().uptimeNanoseconds : 0
    var blocksRun = 1
    defer {
        if profiling { profile.record(nanoseconds: DispatchTime.now().uptimeNanoseconds - start, threads: blocksRun, m: m, n: n, k: k) }
    }
    func sgemm(rows: Range<Int>, columns: Range<Int>) {
        // Row r of op(A) starts at a + r·lda (stored as is) or a + r (transposed); likewise columns of op(B).
        let aBlock = a + rows.lowerBound * (transA == .none ? lda : 1)
        let bBlock = b + columns.lowerBound * (transB == .none ? 1 : ldb)
        // Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: the call OpenBLAS's
        // row-major interface makes itself, minus its "direct" small-sgemm path for
        // untransposed operands (taken below about 7M m·n·k at one BLAS thread), whose
        // different summation order would make a block's values depend on its size.
        cblas_sgemm(
            CblasColMajor, transB.cblas, transA.cblas,
            blasint(columns.count), blasint(rows.count), blasint(k),
            alpha, bBlock, blasint(ldb), aBlock, blasint(lda),
            beta, c + rows.lowerBound * ldc + columns.lowerBound, blasint(ldc))
    }
    // Blocks of whole 16-row/column tiles, each above OpenBLAS's small-matrix threshold
    // (m·n·k ≤ 10⁶ takes a kernel with another summation order): then every block runs
    // the same kernel as the whole product would, and values do not depend on the split.
    let tile = 16, smallMatrix = 1_000_000
    let byRows = m >= n
    let extent = byRows ? m : n, tiles = (extent + tile - 1) / tile, perUnit = (byRows ? n : m) * k
    var blocks = min(threads, tiles)
    while blocks > 1 && (0..<blocks).contains(where: { b in
        (min((b + 1) * tiles / blocks * tile, extent) - b * tiles / blocks * tile) * perUnit <= smallMatrix
    }) {
        blocks -= 1
    }
    guard blocks > 1 else { return sgemm(rows: 0..<m, columns: 0..<n) }
    blocksRun = parallelChunks(tiles, threads: blocks) { tiles in
        let range = tiles.lowerBound * tile ..< min(tiles.upperBound * tile, extent)
        if byRows { sgemm(rows: range, columns: 0..<n) } else { sgemm(rows: 0..<m, columns: range) }
    }
}
