import EmberModel
import Foundation
import Testing
@testable import ember

/// `model.precision` from the configuration to `ember run` and `ember embed`. The CPU check
/// is exercised on any machine with EMBER_CPU_NO_BF16=1, which hides AVX512-BF16.
@Suite("model.precision")
struct PrecisionCLITests {
    private static let noBF16 = [ModelPrecision.hideBF16Variable: "1"]
    private static var modelPresent: Bool {
        FileManager.default.fileExists(atPath: URL.defaultModelDirectory.appendingPathComponent("manifest.json").path)
    }

    @Test("the setting parses auto, fp32 and bf16 in any case, defaults to auto, and names itself when malformed")
    func parsing() async throws {
        #expect(try await ConfigurationLoader.load(file: nil, environment: [:]).modelPrecision == .auto)
        for (raw, expected) in [("fp32", PrecisionSetting.fp32), ("BF16", .bf16), ("auto", .auto)] {
            #expect(try await ConfigurationLoader.load(file: nil, environment: ["EMBER_MODEL_PRECISION": raw]).modelPrecision == expected)
        }
        do {
            _ = try await ConfigurationLoader.load(file: nil, environment: ["EMBER_MODEL_PRECISION": "fp16"])
            Issue.record("model.precision=fp16 was accepted")
        } catch {
            #expect(error.message == "model.precision must be auto, fp32 or bf16, got 'fp16'")
        }
    }

    @Test("ember run with model.precision=bf16 on a CPU without AVX512-BF16 stops at start-up, saying what to set")
    func runRefusesBF16WithoutTheFeature() throws {
        let (status, output) = try runEmber(
            ["run", "--brokers", "127.0.0.1:1", "--set", "model.precision=bf16"], environment: Self.noBF16)
        #expect(status == 2)
        #expect(output.contains("start-up failed"))
        #expect(output.contains("model.precision=bf16: invalid model config precision: bf16 needs a CPU with AVX512-BF16"), "\(output)")
        #expect(output.contains("use auto or fp32"))
    }

    @Test("ember embed: auto follows the CPU (+bf16 in the model id only with AVX512-BF16); fp32 never; bf16 without the feature fails",
          .enabled(if: modelPresent, "needs the omni-small model (Ops/model-fetch)"))
    func embed() throws {
        func model(_ arguments: [String], _ environment: [String: String] = [:]) throws -> String {
            let (status, output) = try runEmber(["embed", "--title", "a red bicycle"] + arguments, environment: environment)
            #expect(status == 0, "\(output)")
            let record = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any]
            return try #require(record?["model"] as? String)
        }
        let fp32 = try model(["--precision", "fp32"])
        #expect(fp32.hasPrefix("omni-small@") && !fp32.hasSuffix("+bf16"))
        #expect(try model([], Self.noBF16) == fp32, "auto without AVX512-BF16 is fp32")
        #expect(try model(["--precision", "auto"]) == (ComputePrecision.bf16Available ? fp32 + "+bf16" : fp32))
        let refused = try runEmber(["embed", "--title", "a red bicycle", "--precision", "bf16"], environment: Self.noBF16)
        #expect(refused.status != 0)
        #expect(refused.output.contains("bf16 needs a CPU with AVX512-BF16"), "\(refused.output)")
    }
}
