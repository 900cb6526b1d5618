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
package func gemm(
    _ transA: Transpose = .none, _ transB: Transpose = .none,
    m: Int, n: Int, k: Int,
    alpha: Float = 1, a: UnsafePointer<Float>, lda: Int? = nil,
    b: UnsafePointer<Float>, ldb: Int? = nil,
    beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int? = nil
) {
    let lda = lda ?? (transA == .none ? k : m)
    let ldb = ldb ?? (transB == .none ? n : k)
    let ldc = ldc ?? n
    let profile = GEMMProfile.shared
    let profiling = profile.enabled
    let start = profiling ? DispatchTime.now().uptimeNanoseconds : 0
    defer {
        if profiling { profile.record(nanoseconds: DispatchTime.now().uptimeNanoseconds - start, m: m, n: n, k: k) }
    }
    cblas_sgemm(
        CblasRowMajor, transA.cblas, transB.cblas,
        blasint(m), blasint(n), blasint(k),
        alpha, a, blasint(lda), b, blasint(ldb),
        beta, c, blasint(ldc))
}
