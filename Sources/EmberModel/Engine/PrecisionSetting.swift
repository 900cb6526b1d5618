/// The operator's choice of arithmetic (`model.precision`), resolved against this CPU
/// into the engine's `ComputePrecision` once, at start-up.
public enum PrecisionSetting: String, Sendable, CaseIterable {
    /// bf16 where the CPU has AVX512-BF16 (measured faster at cosine ≥ 0.9999 per tower), fp32 elsewhere.
    case auto
    /// fp32 everywhere: records equal to the PyTorch-parity path, on any x86-64 CPU.
    case fp32
    /// bf16 in the text and audio linear layers; start-up fails on a CPU without AVX512-BF16.
    case bf16

    /// The precision this CPU computes in, or `ModelError.invalidConfig` when bf16 is asked
    /// for explicitly on a CPU without AVX512-BF16 (a fleet stating `bf16` gets bf16
    /// records or no worker, never silently different vectors; `auto` is the fallback).
    public func resolved(bf16Available: Bool = ComputePrecision.bf16Available) throws(ModelError) -> ComputePrecision {
        switch self {
        case .fp32: return .fp32
        case .auto: return bf16Available ? .bf16 : .fp32
        case .bf16:
            guard bf16Available else {
                throw .invalidConfig(key: "precision", reason: "bf16 needs a CPU with AVX512-BF16, which this one lacks; use auto or fp32")
            }
            return .bf16
        }
    }
}
