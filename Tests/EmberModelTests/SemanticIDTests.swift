import Foundation
import Testing
@testable import EmberModel

/// `clusters` centres on the unit sphere in `dim` dims, `perCluster` noisy unit vectors
/// around each; returns the vectors (row-major) and each one's cluster.
func clusteredVectors(clusters: Int, perCluster: Int, dim: Int, noise: Float, seed: UInt64) -> ([Float], [Int]) {
    var generator = SeededGenerator(seed: seed)
    func gaussian() -> Float {
        // Box–Muller on the seeded generator.
        let u = max(generator.unit(), 1e-12), v = generator.unit()
        return Float((-2 * log(u)).squareRoot() * cos(2 * Double.pi * v))
    }
    func normalized(_ x: [Float]) -> [Float] {
        let norm = x.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return x.map { $0 / norm }
    }
    let centres = (0..<clusters).map { _ in normalized((0..<dim).map { _ in gaussian() }) }
    var vectors: [Float] = []
    var labels: [Int] = []
    for i in 0..<(clusters * perCluster) {
        let c = i % clusters  // interleaved, so no cluster sits in one block of rows
        vectors += normalized(centres[c].map { $0 + noise * gaussian() / Float(dim).squareRoot() })
        labels.append(c)
    }
    return (vectors, labels)
}

/// Share of items whose cluster is the majority cluster of their code.
func purity(codes: [Int], labels: [Int]) -> Double {
    var byCode: [Int: [Int: Int]] = [:]
    for (c, l) in zip(codes, labels) { byCode[c, default: [:]][l, default: 0] += 1 }
    return Double(byCode.values.reduce(0) { $0 + ($1.values.max() ?? 0) }) / Double(codes.count)
}

@Suite("Semantic IDs: residual k-means codebooks")
struct SemanticIDTests {
    let dim = 48

    @Test("the first level recovers synthetic clusters (purity ≥ 0.95) and later levels shrink the error", arguments: [UInt64(1), 2, 3, 4, 5])
    func recoversClusters(seed: UInt64) throws {
        let (vectors, labels) = clusteredVectors(clusters: 12, perCluster: 40, dim: dim, noise: 0.4, seed: 6 + seed)
        let codebook = try ResidualKMeans(.init(sizes: [12, 8, 8], seed: seed)).train(vectors, count: labels.count, dim: dim, modelID: "test@1")
        let codes = try codebook.assign(vectors, count: labels.count)
        let p = purity(codes: codes.map { $0[0] }, labels: labels)
        #expect(p >= 0.95, "purity \(p)")
        let s = codebook.statistics
        #expect(s.items == 480 && s.iterations.count == 3 && s.perplexity.count == 3)
        #expect(s.perplexity[0] > 11 && s.perplexity[0] <= 12 + 1e-9, "level-0 perplexity \(s.perplexity[0])")
        #expect(s.relativeError > 0 && s.relativeError < 0.15, "relative error \(s.relativeError)")
        // One level alone leaves more error than three.
        let one = try ResidualKMeans(.init(sizes: [12], seed: 1)).train(vectors, count: labels.count, dim: dim, modelID: "test@1")
        #expect(one.statistics.meanSquaredError > s.meanSquaredError * 1.1)
        // The stored statistics are those of nearest-centroid assignment with the result.
        #expect(CodebookStatistics.collisionShare(codes) == s.collisionShare)
    }

    @Test("the same seed gives the same codebook file byte for byte; another seed another codebook")
    func deterministic() throws {
        let (vectors, labels) = clusteredVectors(clusters: 6, perCluster: 30, dim: dim, noise: 1.0, seed: 3)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ember-codebook-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var files: [Data] = []
        for (i, seed) in [UInt64(42), 42, 43].enumerated() {
            let codebook = try ResidualKMeans(.init(sizes: [8, 4], seed: seed)).train(vectors, count: labels.count, dim: dim, modelID: "m@1")
            let url = directory.appendingPathComponent("\(i).safetensors")
            try codebook.write(to: url)
            files.append(try Data(contentsOf: url))
        }
        #expect(files[0] == files[1])
        #expect(files[0] != files[2])
    }

    @Test("file round trip keeps centroids, model id and statistics; damaged files name the problem")
    func roundTrip() throws {
        let (vectors, labels) = clusteredVectors(clusters: 5, perCluster: 20, dim: dim, noise: 0.8, seed: 5)
        let codebook = try ResidualKMeans(.init(sizes: [5, 3, 3], seed: 9, balanced: true))
            .train(vectors, count: labels.count, dim: dim, modelID: "omni-small@abc")
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ember-codebook-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try codebook.write(to: url)
        let loaded = try Codebook(contentsOf: url)
        #expect(loaded == codebook)
        #expect(loaded.sizes == [5, 3, 3] && loaded.statistics.balanced)
        #expect(try loaded.assign(vectors, count: labels.count) == codebook.assign(vectors, count: labels.count))

        let file = try SafeTensorsFile(path: url.path)
        #expect(file.metadata["model"] == "omni-small@abc" && file.metadata["sizes"] == "5,3,3" && file.metadata["dim"] == "\(dim)")
        #expect(file.entries["level.0"]?.shape == [5, dim])

        // A model file is not a codebook.
        try writeSafeTensors([(name: "level.0", shape: [2, 2], values: [1, 2, 3, 4])], to: url)
        #expect(throws: CodebookError.invalidFile(path: url.path, reason: "metadata format is absent, expected ember-codebook")) {
            try Codebook(contentsOf: url)
        }
        #expect(throws: CodebookError.dimensionMismatch(got: 3, expected: dim)) { try codebook.codes(for: [1, 2, 3]) }
    }

    @Test("an empty cluster takes the farthest point of a cluster that keeps one")
    func emptyClusterRepair() {
        let level = KMeansLevel(k: 3, dim: 1, maxIterations: 1, balanced: false)
        var codes = [0, 0, 0, 1]
        var distances: [Float] = [0.1, 0.9, 0.5, 3.0]
        // Row 3 is farthest but alone in cluster 1; row 1 is the farthest that can move.
        #expect(level.repairEmptyClusters(codes: &codes, distances: &distances) == 1)
        #expect(codes == [0, 2, 0, 1])
        // Training with more centroids than distinct rows still uses every code.
        let rows: [Float] = [0, 0, 0, 0, 1, 1, 1, 5]
        let result = rows.withUnsafeBufferPointer {
            var generator = SeededGenerator(seed: 1)
            return KMeansLevel(k: 3, dim: 1, maxIterations: 5, balanced: false).train(rows: $0.baseAddress!, count: 8, generator: &generator)
        }
        #expect(Set(result.centroids) == [0, 1, 5])
    }

    @Test("balanced assignment caps every cluster at ⌈n / K⌉ and evens out a skewed level")
    func balanced() throws {
        // 160 rows in one tight cluster, 20 each in four others.
        let (big, _) = clusteredVectors(clusters: 1, perCluster: 160, dim: dim, noise: 0.3, seed: 11)
        let (small, _) = clusteredVectors(clusters: 4, perCluster: 20, dim: dim, noise: 0.3, seed: 12)
        let vectors = big + small
        let n = vectors.count / dim
        let level = KMeansLevel(k: 8, dim: dim, maxIterations: 10, balanced: true)
        var generator = SeededGenerator(seed: 2)
        let centroids = vectors.withUnsafeBufferPointer { level.seed(rows: $0.baseAddress!, count: n, generator: &generator) }
        var codes: [Int] = [], distances: [Float] = []
        vectors.withUnsafeBufferPointer {
            level.assignBalanced(NearestCentroid(centroids: centroids, k: 8, dim: dim), rows: $0.baseAddress!, count: n, codes: &codes, distances: &distances)
        }
        var counts = [Int](repeating: 0, count: 8)
        for c in codes { counts[c] += 1 }
        #expect(counts.allSatisfy { $0 == 30 }, "\(counts)")
        let plain = try ResidualKMeans(.init(sizes: [8], seed: 2)).train(vectors, count: n, dim: dim, modelID: "m")
        let even = try ResidualKMeans(.init(sizes: [8], seed: 2, balanced: true)).train(vectors, count: n, dim: dim, modelID: "m")
        #expect(even.statistics.perplexity[0] >= plain.statistics.perplexity[0], "\(even.statistics.perplexity) vs \(plain.statistics.perplexity)")
    }

    @Test("BLAS assignment equals a naive nearest-centroid search on odd shapes")
    func assignmentMatchesNaive() throws {
        let (vectors, _) = clusteredVectors(clusters: 7, perCluster: 13, dim: 37, noise: 1.5, seed: 21)
        let n = vectors.count / 37
        let codebook = try ResidualKMeans(.init(sizes: [7, 5], seed: 3)).train(vectors, count: n, dim: 37, modelID: "m")
        let codes = try codebook.assign(vectors, count: n)
        for row in 0..<n {
            var residual = Array(vectors[(row * 37)..<((row + 1) * 37)])
            var naive: [Int] = []
            for (l, k) in codebook.sizes.enumerated() {
                let distance = (0..<k).map { j in (0..<37).reduce(Float(0)) { $0 + pow(residual[$1] - codebook.levels[l][j * 37 + $1], 2) } }
                let best = distance.indices.min { distance[$0] < distance[$1] }!
                naive.append(best)
                for i in 0..<37 { residual[i] -= codebook.levels[l][best * 37 + i] }
            }
            #expect(codes[row] == naive, "row \(row)")
        }
        #expect(Codebook.string([12, 201, 7]) == "12-201-7")
    }

    @Test("training refuses what cannot make a codebook")
    func invalidTraining() {
        #expect(throws: CodebookError.self) { try ResidualKMeans(.init(sizes: [8])).train([1, 2, 3, 4], count: 2, dim: 2, modelID: "m") }
        #expect(throws: CodebookError.self) { try ResidualKMeans(.init(sizes: [1])).train([.nan, 1], count: 1, dim: 2, modelID: "m") }
        #expect(throws: CodebookError.self) { try ResidualKMeans(.init(sizes: [1])).train([1, 2, 3], count: 1, dim: 2, modelID: "m") }
    }

    @Test("item-hash disambiguation is a stable FNV-1a code below 65536")
    func disambiguation() {
        #expect(SemanticIDDisambiguation.none.extraCode(itemID: "a") == nil)
        // FNV-1a-64("a") = 0xaf63dc4c8601ec8c.
        #expect(SemanticIDDisambiguation.itemHash.extraCode(itemID: "a") == 0xec8c)
        #expect(SemanticIDDisambiguation.itemHash.extraCode(itemID: "7312345678901234567") != SemanticIDDisambiguation.itemHash.extraCode(itemID: "7312345678901234568"))
    }
}

@Suite("Compact vector encodings")
struct VectorEncodingTests {
    @Test("int8 decodes within half a step; binary keeps every sign; f16/f32 as before")
    func roundTrips() throws {
        var v = pseudoRandom(2048, seed: 4)
        v[17] = 0
        let int8 = VectorEncoding.int8.encode(v)
        #expect(int8.bytes.count == 2048)
        let scale = try #require(int8.scale)
        #expect(scale == v.map(abs).max()! / 127)
        let back = try #require(VectorEncoding.int8.decode(int8.bytes, dim: 2048, scale: scale))
        #expect(zip(v, back).allSatisfy { abs($0 - $1) <= scale / 2 + 1e-7 })
        let bits = VectorEncoding.binary.encode(v)
        #expect(bits.bytes.count == 256 && bits.scale == nil)
        let signs = try #require(VectorEncoding.binary.decode(bits.bytes, dim: 2048, scale: nil))
        #expect(zip(v, signs).allSatisfy { ($0 >= 0) == ($1 > 0) })
        #expect(abs(signs.reduce(0) { $0 + $1 * $1 } - 1) < 1e-4)
        #expect(VectorEncoding.binary.encode([1, -1, -1, 1, 1, 1, 1, 1, -2]).bytes == [0b1111_1001, 0])
        #expect(VectorEncoding.f16.decode(VectorEncoding.f16.encode(v).bytes, dim: 2048, scale: nil) == v.map { Float(Float16($0)) })
        #expect(VectorEncoding.f32.decode(VectorEncoding.f32.encode(v).bytes, dim: 2048, scale: nil) == v)
        // Wrong lengths and a missing scale are refused.
        #expect(VectorEncoding.int8.decode(int8.bytes, dim: 2048, scale: nil) == nil)
        #expect(VectorEncoding.binary.decode(bits.bytes, dim: 2049, scale: nil) == nil)
        #expect(VectorEncoding.int8.encode([0, 0]).scale == 1)
    }
}
