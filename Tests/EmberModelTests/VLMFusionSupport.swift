import Foundation
import Testing
@testable import EmberModel

/// Where `Ops/model-fetch qwen2vl-tiny` (which Ops/test runs) writes the tiny VLM-fusion
/// models: `$EMBER_QWEN2VL_TINY_ROOT`, else next to omni-small.
let qwen2vlTinyRoot: URL = {
    if let path = ProcessInfo.processInfo.environment["EMBER_QWEN2VL_TINY_ROOT"], !path.isEmpty { return URL(fileURLWithPath: path) }
    return URL.defaultModelDirectory.deletingLastPathComponent()
}()
let qwen2vlTiny = qwen2vlTinyRoot.appendingPathComponent("qwen2vl-tiny")
let qwen2vlTinySail = qwen2vlTinyRoot.appendingPathComponent("qwen2vl-tiny-sail")
let qwen2vlTinyAvailable = FileManager.default.fileExists(atPath: qwen2vlTiny.appendingPathComponent("reference.safetensors").path)

/// The reference tensors the generator wrote next to a tiny model.
struct VLMReference {
    let file: SafeTensorsFile

    init(_ directory: URL) throws {
        file = try SafeTensorsFile(path: directory.appendingPathComponent("reference.safetensors").path)
    }

    func floats(_ name: String) throws -> [Float] { try file.floats(name) }
    func shape(_ name: String) -> [Int] { file.entries[name]?.shape ?? [] }
    func ids(_ name: String) throws -> [Int32] { try file.int64s(name).map { Int32($0) } }
    func has(_ name: String) -> Bool { file.entries[name] != nil }
}
