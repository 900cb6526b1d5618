import EmberModel
import Foundation

/// `model.precision` resolved for this process. `EMBER_CPU_NO_BF16=1` hides AVX512-BF16
/// (EmberModel reads no environment), so the fallback and the refusal can be tested,
/// and tried, on any CPU.
enum ModelPrecision {
    static let hideBF16Variable = "EMBER_CPU_NO_BF16"

    static var bf16Available: Bool {
        ProcessInfo.processInfo.environment[hideBF16Variable] != "1" && ComputePrecision.bf16Available
    }

    static func resolve(_ setting: PrecisionSetting) throws(ModelError) -> ComputePrecision {
        try setting.resolved(bf16Available: bf16Available)
    }
}
