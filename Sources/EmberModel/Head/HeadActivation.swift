import Foundation

/// The nonlinearity between the two layers of an MLP projection head. Training
/// (EmberAlign) and the worker use these same scalar functions, so a head computes the
/// same values in both.
public enum HeadActivation: String, Sendable, CaseIterable, Codable {
    /// Exact GELU, `x/2 · (1 + erf(x/√2))`.
    case gelu
    case relu

    @inline(__always)
    public func apply(_ x: Float) -> Float {
        switch self {
        case .gelu: 0.5 * x * (1 + erff(x * 0.70710678118654752))
        case .relu: max(x, 0)
        }
    }

    /// d apply / dx at `x` (ReLU: 0 at 0).
    @inline(__always)
    public func derivative(_ x: Float) -> Float {
        switch self {
        case .gelu:
            // Φ(x) + x·φ(x)
            0.5 * (1 + erff(x * 0.70710678118654752)) + x * 0.39894228040143268 * expf(-0.5 * x * x)
        case .relu: x > 0 ? 1 : 0
        }
    }
}
