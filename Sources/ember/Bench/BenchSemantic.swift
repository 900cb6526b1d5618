import ArgumentParser
import EmberModel
import EmberPipeline
import Foundation

/// `ember bench semantic`: what semantic IDs and compact outputs cost. Codebook
/// training time on a large synthetic set, per-item assignment cost, and on real
/// omni-small embeddings of generated items: prefix-retrieval and encoding recall@10
/// against exact cosine, bytes per record per format and encoding, and the cost of a
/// per-worker near-duplicate scan. Figures, not a pass/fail test.
struct BenchSemantic: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "semantic", abstract: "Codebook training and assignment cost, encoding and prefix recall, record sizes.")

    @Option(help: "Synthetic vectors to train on (0: skip the training benchmark).") var trainItems = 100_000
    @Option(help: "Their dimensions.") var dim = 2048
    @Option(help: "Lloyd iterations per level for the training benchmark.") var iterations = 20
    @Option(help: "Generated items to embed with the real model (0: skip).") var realItems = 1000
    @Option(help: "Model directory (default: EMBER_MODEL_DIR or ~/.cache/ember/models/omni-small).") var model: String?
    @Option(help: "OpenBLAS threads.") var threads = 2

    func run() throws {
        BLASThreads.count = threads
        print("OpenBLAS \(BLASThreads.coreName), \(threads) thread(s); load average \(Self.loadAverage())")
        if trainItems > 0 { try benchTraining() }
        if realItems > 0 { try benchRealEmbeddings() }
    }

    /// 100k × 2048 by default: vectors around 1024 random unit centres (noise as large as
    /// the centre), the default 3 × 256 codebook.
    private func benchTraining() throws {
        let (vectors, count) = Self.syntheticVectors(count: trainItems, dim: dim, centres: 1024, seed: 1)
        print("training 3 × 256 on \(count) × \(dim) synthetic vectors (\((count * dim * 4) >> 20) MiB)")
        let started = ContinuousClock.now
        let codebook = try ResidualKMeans(.init(maxIterations: iterations, seed: 0))
            .train(vectors, count: count, dim: dim, modelID: "synthetic") { print("  " + $0) }
        let seconds = Self.seconds(ContinuousClock.now - started)
        let s = codebook.statistics
        print(String(format: "codebook training: %.1f s (%@ iterations), relative error %.3f, perplexity %@, collisions %.1f%%",
                     seconds, s.iterations.map(String.init).joined(separator: "/"), s.relativeError,
                     s.perplexity.map { String(format: "%.0f", $0) }.joined(separator: "/"), s.collisionShare * 100))
        benchAssignment(codebook, vectors: vectors)
    }

    /// Per item as the worker does it (one vector, one GEMM row per level), and batched.
    private func benchAssignment(_ codebook: Codebook, vectors: [Float]) {
        let dim = codebook.dim
        let single = 2000
        var sink = 0
        let started = ContinuousClock.now
        for i in 0..<single {
            sink &+= (try? codebook.codes(for: Array(vectors[(i * dim)..<((i + 1) * dim)])))?.first ?? 0
        }
        let perItem = Self.seconds(ContinuousClock.now - started) / Double(single)
        let batch = min(4096, vectors.count / dim)
        let batchStarted = ContinuousClock.now
        sink &+= (try? codebook.assign(Array(vectors[0..<(batch * dim)]), count: batch))?.count ?? 0
        let perItemBatched = Self.seconds(ContinuousClock.now - batchStarted) / Double(batch)
        print(String(format: "assignment 3 × 256, %d dims: %.1f µs per item alone, %.1f µs per item in a batch of %d (%d)",
                     dim, perItem * 1e6, perItemBatched * 1e6, batch, sink & 1))
    }

    private func benchRealEmbeddings() throws {
        let directory = model ?? ModelDirectory.resolved()
        BLASThreads.count = threads
        let engine = try EmbeddingEngine(modelDirectory: URL(fileURLWithPath: directory))
        let items = GeneratedCatalog.items(count: realItems, seed: 1)
        let started = ContinuousClock.now
        var vectors: [Float] = []
        for chunk in stride(from: 0, to: items.count, by: 32) {
            vectors += try engine.embed(items[chunk..<min(items.count, chunk + 32)].map { ItemInput(text: $0.text) }).flatMap(\.vector)
        }
        let dim = engine.manifest.output.dim
        let n = items.count
        print(String(format: "embedded %d generated items (titles and tags) with %@ in %.1f s", n, engine.modelID, Self.seconds(ContinuousClock.now - started)))
        let truth = RetrievalEvaluation.neighbours(vectors, count: n, dim: dim, k: 10)

        // Prefix retrieval: the item's semantic ID alone, codebooks of a size that leaves
        // tens of items per first-level code on this set.
        for sizes in [[16, 16, 16], [32, 32, 32], [64, 64, 64]] where sizes[0] * 4 <= n {
            let codebook = try ResidualKMeans(.init(sizes: sizes, seed: 0)).train(vectors, count: n, dim: dim, modelID: engine.modelID)
            let codes = try codebook.assign(vectors, count: n)
            let recall = RetrievalEvaluation.recall(
                RetrievalEvaluation.prefixNeighbours(queries: vectors, codes: codes, codebook: codebook, k: 10), truth: truth)
            print(String(format: "prefix retrieval %@: recall@10 %.3f (random %.3f), relative error %.3f, collisions %.1f%%",
                         sizes.map(String.init).joined(separator: "×"), recall, 10 / Double(n - 1),
                         codebook.statistics.relativeError, codebook.statistics.collisionShare * 100))
        }

        // Encodings: neighbours among decoded vectors against f32 neighbours; record sizes.
        for encoding in VectorEncoding.allCases {
            var decoded: [Float] = []
            decoded.reserveCapacity(n * dim)
            for i in 0..<n {
                let e = encoding.encode(Array(vectors[(i * dim)..<((i + 1) * dim)]))
                decoded += encoding.decode(e.bytes, dim: dim, scale: e.scale) ?? []
            }
            let recall = RetrievalEvaluation.recall(RetrievalEvaluation.neighbours(decoded, count: n, dim: dim, k: 10), truth: truth)
            let record = EmbeddingRecord(
                itemID: "7312345678901234567", model: engine.modelID, vector: Array(vectors[0..<dim]), encoding: encoding,
                semanticID: [12, 201, 7], modalities: .init(visionFrames: 8, textTokens: 57, audioSeconds: 12.4),
                source: .init(topic: "video.uploaded", partition: 3, offset: 12345), uploadedAt: "2026-11-28T10:00:00Z",
                embeddedAt: Date())
            let sizes = try RecordFormat.allCases.map { "\($0.rawValue) \(try $0.encode(record).count) B" }.joined(separator: ", ")
            print(String(format: "encoding %-6@ vector %5d B, recall@10 vs f32 %.3f; record: %@",
                         encoding.rawValue, encoding.encode(Array(vectors[0..<dim])).bytes.count, recall, sizes))
        }
        benchDuplicateScan(dim: dim)
    }

    /// What a per-worker near-duplicate index would cost: one GEMV of the new vector
    /// against the R most recent ones (f32, as BLAS needs), per item.
    private func benchDuplicateScan(dim: Int) {
        for recent in [10_000, 100_000] {
            let (index, _) = Self.syntheticVectors(count: recent, dim: dim, centres: 64, seed: 2)
            let query = Array(index[0..<dim])
            var scores = [Float](repeating: 0, count: recent)
            let rounds = 20
            gemm(m: recent, n: 1, k: dim, a: index, b: query, c: &scores)  // warm-up: BLAS threads, caches
            let started = ContinuousClock.now
            for _ in 0..<rounds { gemm(m: recent, n: 1, k: dim, a: index, b: query, c: &scores) }
            let perItem = Self.seconds(ContinuousClock.now - started) / Double(rounds)
            print(String(format: "duplicate scan over %d recent items: %.2f ms per item, %d MiB of vectors per worker", recent, perItem * 1e3, (recent * dim * 4) >> 20))
        }
    }

    static func syntheticVectors(count: Int, dim: Int, centres: Int, seed: UInt64) -> ([Float], Int) {
        var generator = SeededGenerator(seed: seed)
        func gaussian() -> Float {
            let u = max(generator.unit(), 1e-12), v = generator.unit()
            return Float((-2 * log(u)).squareRoot() * cos(2 * Double.pi * v))
        }
        var centre = [Float](repeating: 0, count: centres * dim)
        for i in centre.indices { centre[i] = gaussian() / Float(dim).squareRoot() }
        var vectors = [Float](repeating: 0, count: count * dim)
        vectors.withUnsafeMutableBufferPointer { out in
            for row in 0..<count {
                let c = generator.index(below: centres)
                var norm: Float = 0
                for i in 0..<dim {
                    let x = centre[c * dim + i] + gaussian() / Float(dim).squareRoot()
                    out[row * dim + i] = x
                    norm += x * x
                }
                let scale = 1 / norm.squareRoot()
                for i in 0..<dim { out[row * dim + i] *= scale }
            }
        }
        return (vectors, count)
    }

    static func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }

    static func loadAverage() -> String {
        (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "unknown"
    }
}
