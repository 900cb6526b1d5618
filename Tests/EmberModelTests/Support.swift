import Foundation
import Testing
@testable import EmberModel

/// Committed fixtures next to this file.
let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
let tinyModel = fixtures.appendingPathComponent("tiny")

/// Deterministic values in [-1, 1) so failures reproduce.
func pseudoRandom(_ count: Int, seed: UInt64) -> [Float] {
    var state = seed
    return (0..<count).map { _ in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Float(Int64(bitPattern: state >> 11) % 2_000_000) / 1_000_000 - 1
    }
}

struct Comparison: CustomStringConvertible {
    let maxAbsDiff: Float
    let cosine: Double
    let first: ([Float], [Float])

    init(_ got: [Float], _ expected: [Float]) {
        precondition(got.count == expected.count, "length \(got.count) vs \(expected.count)")
        maxAbsDiff = zip(got, expected).map { abs($0 - $1) }.max() ?? 0
        var dot = 0.0, a = 0.0, b = 0.0
        for (x, y) in zip(got, expected) { dot += Double(x) * Double(y); a += Double(x) * Double(x); b += Double(y) * Double(y) }
        cosine = (a == 0 && b == 0) ? 1 : dot / (a.squareRoot() * b.squareRoot())
        first = (Array(got.prefix(4)), Array(expected.prefix(4)))
    }

    var description: String { "max abs diff \(maxAbsDiff), cosine \(cosine), first got \(first.0) expected \(first.1)" }
}

/// Asserts the fp32 parity contract: max abs diff ≤ tolerance and cosine ≥ minCosine.
func expectClose(_ got: [Float], _ expected: [Float], tolerance: Float = 1e-4, minCosine: Double = 0.99999,
                 _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    guard got.count == expected.count else {
        Issue.record("\(what): \(got.count) values, expected \(expected.count)", sourceLocation: sourceLocation)
        return
    }
    let c = Comparison(got, expected)
    // EMBER_PARITY_LOG=1 prints every comparison, for reporting the measured margins.
    if ProcessInfo.processInfo.environment["EMBER_PARITY_LOG"] != nil { print("parity \(what): \(c)") }
    #expect(c.maxAbsDiff <= tolerance && c.cosine >= minCosine, "\(what): \(c)", sourceLocation: sourceLocation)
}

/// Writes a safetensors file from (name, dtype, shape, raw bytes) entries, for reader tests.
func writeSafeTensors(_ entries: [(String, String, [Int], [UInt8])], to url: URL, headerPadding: String = "") throws {
    var header: [String: Any] = [:]
    var data: [UInt8] = []
    for (name, dtype, shape, bytes) in entries {
        header[name] = ["dtype": dtype, "shape": shape, "data_offsets": [data.count, data.count + bytes.count]]
        data += bytes
    }
    var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
    json += Data(headerPadding.utf8)
    var out = Data()
    withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
    out += json
    out += data
    try out.write(to: url)
}

func bytes<T>(_ values: [T]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }

func temporaryFile(_ name: String) -> URL {
    FileManager.default.temporaryDirectory.appendingPathComponent("ember-model-tests-\(getpid())-\(name)")
}
