import Foundation
import Testing
@testable import EmberModel

/// Inputs Ops/fuzz found that crashed a parser (each trapped before its fix), kept
/// byte for byte, plus the neighbouring cases the same fix covers.
@Suite("Fuzz regressions: model files")
struct FuzzRegressionTests {
    /// Writes `bytes` to a scratch file and opens it as safetensors.
    func open(_ name: String, _ bytes: [UInt8]) throws -> SafeTensorsFile {
        let url = temporaryFile(name)
        defer { try? FileManager.default.removeItem(at: url) }
        try Data(bytes).write(to: url)
        return try SafeTensorsFile(path: url.path)
    }

    func file(header: String, data: [UInt8] = []) -> [UInt8] {
        let json = Array(header.utf8)
        return withUnsafeBytes(of: UInt64(json.count).littleEndian, Array.init) + json + data
    }

    @Test("FuzzSafeTensors crash-d45c6a3a: a header length above Int.max is a truncated file, not a trap")
    func headerLengthAboveIntMax() throws {
        // The fuzzer's reproducer: length 0x…ffffffff0000003e8 read as little-endian UInt64.
        let reproducer: [UInt8] = [0xe8, 0x03, 0, 0] + [UInt8](repeating: 0xff, count: 37) + [0, 0, 0, 0, 0x7b, 0x7d]
        #expect {
            try open("fuzz-length.safetensors", reproducer)
        } throws: { error in
            guard case ModelError.truncatedFile(_, let expected, let actual) = error else { return false }
            return expected > actual && actual == reproducer.count
        }
        let maximal = withUnsafeBytes(of: UInt64.max, Array.init) + Array("{}".utf8)
        #expect(throws: ModelError.self) { try open("fuzz-max.safetensors", maximal) }
    }

    @Test("a shape whose element count overflows is a bad header, not a trap")
    func shapeOverflow() throws {
        let bytes = file(header: #"{"w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,0]}}"#)
        #expect {
            try open("fuzz-shape.safetensors", bytes)
        } throws: { error in
            guard case ModelError.invalidHeader(_, let reason) = error else { return false }
            return reason.contains("bytes for shape")
        }
    }

    @Test("an end offset near Int.max is a truncated file, not a trap")
    func endOffsetNearIntMax() throws {
        let end = Int.max - 2
        let bytes = file(header: #"{"w":{"dtype":"F32","shape":[],"data_offsets":[\#(end - 4),\#(end)]}}"#)
        #expect {
            try open("fuzz-offset.safetensors", bytes)
        } throws: { error in
            guard case ModelError.truncatedFile = error else { return false }
            return true
        }
    }
}
