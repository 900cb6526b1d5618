import Foundation
import Testing
@testable import EmberModel

@Suite("Safetensors reader")
struct SafeTensorsTests {
    @Test("reads F32, F16, BF16 and I64 tensors")
    func readsDTypes() throws {
        let url = temporaryFile("dtypes.safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        let f32: [Float] = [1.5, -2, 3.25, 0]
        let f16: [UInt16] = [Float16(0.5).bitPattern, Float16(-1.25).bitPattern]
        let bf16: [UInt16] = [UInt16(Float(3.0).bitPattern >> 16), UInt16(Float(-0.5).bitPattern >> 16)]
        let i64: [Int64] = [7, -9, 1 << 40]
        try writeSafeTensors([("a", "F32", [2, 2], bytes(f32)), ("h", "F16", [2], bytes(f16)),
                              ("b", "BF16", [1, 2], bytes(bf16)), ("i", "I64", [3], bytes(i64))], to: url)
        let file = try SafeTensorsFile(path: url.path)
        #expect(file.names == ["a", "b", "h", "i"])
        #expect(try file.floats("a", shape: [2, 2]) == f32)
        #expect(try file.floats("h") == [0.5, -1.25])
        #expect(try file.floats("b") == [3.0, -0.5])
        #expect(try file.int64s("i") == i64)
        #expect(file.entries["a"]?.shape == [2, 2])
    }

    @Test("a truncated file is an error naming the sizes")
    func truncated() throws {
        let url = temporaryFile("truncated.safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try writeSafeTensors([("a", "F32", [4], bytes([Float](repeating: 1, count: 4)))], to: url)
        let data = try Data(contentsOf: url)
        try data.prefix(data.count - 5).write(to: url)
        #expect(throws: ModelError.truncatedFile(path: url.path, expectedBytes: data.count, actualBytes: data.count - 5)) {
            try SafeTensorsFile(path: url.path)
        }
        try Data([1, 2, 3]).write(to: url)
        #expect(throws: ModelError.truncatedFile(path: url.path, expectedBytes: 8, actualBytes: 3)) { try SafeTensorsFile(path: url.path) }
    }

    @Test("byte ranges that do not match dtype × shape are rejected")
    func mismatchedEntry() throws {
        let url = temporaryFile("mismatch.safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try writeSafeTensors([("a", "F32", [3], bytes([Float](repeating: 1, count: 4)))], to: url)
        #expect(throws: ModelError.self) { try SafeTensorsFile(path: url.path) }
        do {
            _ = try SafeTensorsFile(path: url.path)
        } catch {
            #expect("\(error)".contains("16 bytes for shape [3] of F32"))
        }
    }

    @Test("unsupported dtypes, bad JSON, missing files and wrong shapes are clear errors")
    func otherErrors() throws {
        let url = temporaryFile("other.safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try writeSafeTensors([("q", "I8", [2], [1, 2])], to: url)
        #expect(throws: ModelError.unsupportedDType(tensor: "q", dtype: "I8")) { try SafeTensorsFile(path: url.path) }

        var garbage = Data()
        withUnsafeBytes(of: UInt64(4).littleEndian) { garbage.append(contentsOf: $0) }
        garbage += Data("nope".utf8)
        try garbage.write(to: url)
        #expect(throws: ModelError.invalidHeader(path: url.path, reason: "header is not a JSON object")) { try SafeTensorsFile(path: url.path) }

        #expect(throws: ModelError.self) { try SafeTensorsFile(path: "/nonexistent/ember.safetensors") }

        try writeSafeTensors([("w", "F32", [2, 3], bytes([Float](repeating: 0, count: 6)))], to: url)
        let file = try SafeTensorsFile(path: url.path)
        #expect(throws: ModelError.shapeMismatch(tensor: "w", got: [2, 3], expected: [3, 2])) { try file.floats("w", shape: [3, 2]) }
        #expect(throws: ModelError.missingTensor("x")) { try file.floats("x") }
        #expect(ModelError.shapeMismatch(tensor: "w", got: [2, 3], expected: [3, 2]).description == "tensor w has shape [2, 3], expected [3, 2]")
    }

    @Test("the strict loader reports tensors the model did not take")
    func strictLoader() throws {
        let url = temporaryFile("strict.safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try writeSafeTensors([("a", "F32", [1], bytes([Float(1)])), ("extra", "F32", [1], bytes([Float(2)]))], to: url)
        var loader = TensorLoader(try SafeTensorsFile(path: url.path))
        #expect(try loader.take("a", [1]) == [1])
        #expect(throws: ModelError.unexpectedTensors(["extra"])) { try loader.finish() }
        loader.ignore("extra")
        try loader.finish()
    }
}

@Suite("Model manifest")
struct ManifestTests {
    @Test("the tiny fixture's manifest loads with all towers")
    func loadsTiny() throws {
        let manifest = try ModelManifest.load(directory: tinyModel)
        #expect(manifest.id == "tiny-omni")
        #expect(manifest.towers.text?.config?.hiddenSize == 32)
        #expect(manifest.towers.vision?.config?.blocks.count == 3)
        #expect(manifest.towers.audio?.config.encoderAttentionHeads == 4)
        #expect(manifest.output.dim == 32 + 1280 + 32)
    }

    @Test("bad manifests are errors naming the key")
    func badManifests() throws {
        let directory = temporaryFile("manifest")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let original = try String(contentsOf: tinyModel.appendingPathComponent("manifest.json"), encoding: .utf8)
        func write(_ text: String) throws { try text.write(to: directory.appendingPathComponent("manifest.json"), atomically: true, encoding: .utf8) }

        try write(original.replacingOccurrences(of: "\"format\": 2", with: "\"format\": 99"))
        #expect(throws: ModelError.unsupportedFormat(found: 99, supported: 2)) { try ModelManifest.load(directory: directory) }

        try write(original.replacingOccurrences(of: "\"architecture\": \"bert\"", with: "\"architecture\": \"gpt\""))
        #expect(throws: ModelError.self) { try ModelManifest.load(directory: directory) }

        try write(original.replacingOccurrences(of: "\"d_model\"", with: "\"width\""))
        do {
            _ = try ModelManifest.load(directory: directory)
            Issue.record("expected an error")
        } catch let error as ModelError {
            #expect("\(error)".contains("d_model"), "\(error)")
        }

        try write(original.replacingOccurrences(of: "\"dim\": 1344", with: "\"dim\": 2048"))
        #expect(throws: ModelError.invalidConfig(key: "output.dim", reason: "2048 but the fused towers give 1344")) {
            try ModelManifest.load(directory: directory)
        }
        #expect(throws: ModelError.self) { try ModelManifest.load(directory: directory.appendingPathComponent("missing")) }
    }
}
