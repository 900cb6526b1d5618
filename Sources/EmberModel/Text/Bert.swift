// BERT encoder (Hugging Face `transformers` BertModel, post-norm), as used by
// sentence-transformers all-MiniLM-L6-v2: mean pooling over real tokens, then L2.
//
// Shape legend: T packed tokens of all sequences in a batch (no padding), D hidden
// size, F intermediate size, H heads, hd = D / H.

/// One encoder layer's weights; names are the checkpoint's under `encoder.layer.N.`.
struct BertLayer: Sendable {
    let query, queryBias, key, keyBias, value, valueBias: [Float]  // attention.self.{query,key,value}
    let attentionOut, attentionOutBias: [Float]                   // attention.output.dense
    let attentionNorm, attentionNormBias: [Float]                 // attention.output.LayerNorm
    let intermediate, intermediateBias: [Float]                   // intermediate.dense
    let output, outputBias: [Float]                               // output.dense
    let outputNorm, outputNormBias: [Float]                       // output.LayerNorm
    /// ComputePrecision.bf16 only: query, key and value as one (3D, D) product, its bias (3D), and the output projection.
    let bf16: (qkv: BF16Weights, qkvBias: [Float], attentionOut: BF16Weights)?
    let ffn: FeedForwardWeights                                   // intermediate, output (and their bf16 copies)

    init(_ loader: inout TensorLoader, index i: Int, config c: BertConfig, precision: ComputePrecision) throws {
        let p = "encoder.layer.\(i)."
        let d = c.hiddenSize, f = c.intermediateSize
        query = try loader.take(p + "attention.self.query.weight", [d, d])
        queryBias = try loader.take(p + "attention.self.query.bias", [d])
        key = try loader.take(p + "attention.self.key.weight", [d, d])
        keyBias = try loader.take(p + "attention.self.key.bias", [d])
        value = try loader.take(p + "attention.self.value.weight", [d, d])
        valueBias = try loader.take(p + "attention.self.value.bias", [d])
        attentionOut = try loader.take(p + "attention.output.dense.weight", [d, d])
        attentionOutBias = try loader.take(p + "attention.output.dense.bias", [d])
        attentionNorm = try loader.take(p + "attention.output.LayerNorm.weight", [d])
        attentionNormBias = try loader.take(p + "attention.output.LayerNorm.bias", [d])
        intermediate = try loader.take(p + "intermediate.dense.weight", [f, d])
        intermediateBias = try loader.take(p + "intermediate.dense.bias", [f])
        output = try loader.take(p + "output.dense.weight", [d, f])
        outputBias = try loader.take(p + "output.dense.bias", [d])
        outputNorm = try loader.take(p + "output.LayerNorm.weight", [d])
        outputNormBias = try loader.take(p + "output.LayerNorm.bias", [d])
        bf16 = precision == .bf16
            ? (BF16Weights(query + key + value, outFeatures: 3 * d, inFeatures: d), queryBias + keyBias + valueBias,
               BF16Weights(attentionOut, outFeatures: d, inFeatures: d))
            : nil
        ffn = FeedForwardWeights(
            up: intermediate, upBias: intermediateBias, down: output, downBias: outputBias, width: d, hiddenWidth: f,
            bf16: precision == .bf16 ? (BF16Weights(intermediate, outFeatures: f, inFeatures: d), BF16Weights(output, outFeatures: d, inFeatures: f)) : nil)
    }
}

/// The text tower: token ids of several sequences in, one pooled D-vector per sequence out.
public final class BertEncoder: Sendable {
    public let config: BertConfig
    let wordEmbeddings, positionEmbeddings, tokenTypeEmbeddings: [Float]  // embeddings.*_embeddings.weight
    let embeddingNorm, embeddingNormBias: [Float]                         // embeddings.LayerNorm
    let layers: [BertLayer]
    public let precision: ComputePrecision

    /// `precision` .bf16 (AVX512-BF16 CPUs only) runs the linear layers in bf16 with fp32
    /// sums; embeddings, attention, norms and GELU stay fp32.
    public init(weights file: SafeTensorsFile, config: BertConfig, precision: ComputePrecision = .fp32) throws {
        try config.validate()
        self.config = config
        self.precision = precision
        let d = config.hiddenSize
        var loader = TensorLoader(file)
        wordEmbeddings = try loader.take("embeddings.word_embeddings.weight", [config.vocabSize, d])
        positionEmbeddings = try loader.take("embeddings.position_embeddings.weight", [config.maxPositionEmbeddings, d])
        tokenTypeEmbeddings = try loader.take("embeddings.token_type_embeddings.weight", [config.typeVocabSize, d])
        embeddingNorm = try loader.take("embeddings.LayerNorm.weight", [d])
        embeddingNormBias = try loader.take("embeddings.LayerNorm.bias", [d])
        layers = try (0..<config.numHiddenLayers).map { try BertLayer(&loader, index: $0, config: config, precision: precision) }
        loader.ignore("pooler.dense.weight")  // the [CLS] pooler: unused by mean pooling
        loader.ignore("pooler.dense.bias")
        try loader.finish()
    }

    /// Scratch floats one pass needs: x, context (T, D); qkv (T, 3D); scores (L, L) for the
    /// longest sequence L, one per thread; in fp32 the projection (T, D) and the
    /// feed-forward's hidden (T, F); in bf16 (which adds in its stores and keeps hidden rows
    /// in its kernels) the rounded input rows of the widest linear layer or the
    /// feed-forward's per-worker blocks, and attention's per-worker blocks.
    public func scratchFloats(tokens: Int, maxLength: Int, threads: Int = 1) -> Int {
        let d = config.hiddenSize, f = config.intermediateSize
        return tokens * 5 * d + max(threads, 1) * maxLength * maxLength
            + (precision == .bf16 ? max(bf16ScratchFloats(rows: tokens, inFeatures: d), feedForwardBF16ScratchFloats(width: d, hiddenWidth: f, threads: threads))
                + max(threads, 1) * attentionBF16ScratchFloats(maxLength: maxLength, headDim: d / config.numAttentionHeads) : tokens * (d + f))
    }

    /// Last hidden states (T, D) of the sequences packed one after another. `threads` is
    /// how many threads the pass may use (see Parallel.swift); results do not depend on it.
    public func hiddenStates(_ sequences: [[Int32]], arena: ScratchArena, threads: Int = 1) throws -> [Float] {
        let d = config.hiddenSize, f = config.intermediateSize
        let heads = config.numAttentionHeads, headDim = d / heads
        let lengths = sequences.map(\.count)
        guard let maxLength = lengths.max(), maxLength > 0 else { return [] }
        guard maxLength <= config.maxPositionEmbeddings else {
            throw ModelError.invalidInput("sequence of \(maxLength) tokens exceeds \(config.maxPositionEmbeddings) positions")
        }
        for id in sequences.joined() where id < 0 || Int(id) >= config.vocabSize {
            throw ModelError.invalidInput("token id \(id) outside the vocabulary")
        }
        let tokens = lengths.reduce(0, +)
        var starts: [Int] = []
        var offset = 0
        for length in lengths { starts.append(offset); offset += length }

        arena.begin(floats: scratchFloats(tokens: tokens, maxLength: maxLength, threads: threads))
        let x = arena.carve(tokens * d), qkv = arena.carve(tokens * 3 * d), context = arena.carve(tokens * d)
        let scores = arena.carve(max(threads, 1) * maxLength * maxLength)
        // fp32 only: bf16 adds the projections in its stores and keeps the hidden rows in per-worker blocks.
        let projection = arena.carve(precision == .fp32 ? tokens * d : 0), hidden = arena.carve(precision == .fp32 ? tokens * f : 0)
        let bf16 = precision == .bf16
            ? arena.carve(max(bf16ScratchFloats(rows: tokens, inFeatures: d), feedForwardBF16ScratchFloats(width: d, hiddenWidth: f, threads: threads)))
            : nil
        let bf16Attention = precision == .bf16 ? arena.carve(max(threads, 1) * attentionBF16ScratchFloats(maxLength: maxLength, headDim: headDim)) : nil

        // Embeddings: word + position + token type 0, then LayerNorm.
        var row = 0
        for sequence in sequences {
            for (position, id) in sequence.enumerated() {
                let target = x + row * d
                for i in 0..<d {
                    target[i] = wordEmbeddings[Int(id) * d + i] + positionEmbeddings[position * d + i] + tokenTypeEmbeddings[i]
                }
                row += 1
            }
        }
        layerNorm(x, rows: tokens, width: d, gamma: embeddingNorm, beta: embeddingNormBias, eps: config.layerNormEps, out: x, threads: threads)

        let scale = 1 / Float(headDim).squareRoot()
        for layer in layers {
            // Self-attention: q, k, v side by side in one (T, 3D) buffer.
            if let weights = layer.bf16, let bf16, let bf16Attention, headDim % 2 == 0 {
                // One product for q, k, v, stored as bf16, the form attention's products read.
                let rounded = UnsafeMutableRawPointer(qkv).bindMemory(to: UInt16.self, capacity: 2 * tokens * 3 * d)
                linearBF16(x, rows: tokens, inFeatures: d, weight: weights.qkv, bias: weights.qkvBias, roundedOut: rounded, scratch: bf16, threads: threads)
                attentionBF16(qkv: rounded, stride: 3 * d, heads: heads, headDim: headDim, starts: starts, lengths: lengths, scale: scale,
                              scores: scores, scratch: bf16Attention, out: context, threads: threads)
            } else if let weights = layer.bf16, let bf16 {
                linearBF16(x, rows: tokens, inFeatures: d, weight: weights.qkv, bias: weights.qkvBias, out: qkv, scratch: bf16, threads: threads)
                attention(qkv: qkv, stride: 3 * d, heads: heads, headDim: headDim, starts: starts, lengths: lengths,
                          scale: scale, scores: scores, out: context, bf16: bf16Attention, threads: threads)
            } else {
                linear(x, rows: tokens, inFeatures: d, weight: layer.query, bias: layer.queryBias, outFeatures: d, out: qkv, ldOut: 3 * d,
                       bf16: nil, scratch: nil, threads: threads)
                linear(x, rows: tokens, inFeatures: d, weight: layer.key, bias: layer.keyBias, outFeatures: d, out: qkv + d, ldOut: 3 * d,
                       bf16: nil, scratch: nil, threads: threads)
                linear(x, rows: tokens, inFeatures: d, weight: layer.value, bias: layer.valueBias, outFeatures: d, out: qkv + 2 * d, ldOut: 3 * d,
                       bf16: nil, scratch: nil, threads: threads)
                attention(qkv: qkv, stride: 3 * d, heads: heads, headDim: headDim, starts: starts, lengths: lengths,
                          scale: scale, scores: scores, out: context, bf16: bf16Attention, threads: threads)
            }
            // Post-norm residual: x = LN(x + W_o · attention).
            residualLinear(context, rows: tokens, inFeatures: d, weight: layer.attentionOut, bias: layer.attentionOutBias, outFeatures: d,
                           into: x, temporary: projection, bf16: layer.bf16?.attentionOut, scratch: bf16, threads: threads)
            layerNorm(x, rows: tokens, width: d, gamma: layer.attentionNorm, beta: layer.attentionNormBias, eps: config.layerNormEps, out: x, threads: threads)
            // Feed-forward: x = LN(x + W2 · gelu(W1 · x)).
            residualFeedForward(x, rows: tokens, norm: nil, weights: layer.ffn, activation: .gelu, normed: projection, hidden: hidden, scratch: bf16,
                                threads: threads)
            layerNorm(x, rows: tokens, width: d, gamma: layer.outputNorm, beta: layer.outputNormBias, eps: config.layerNormEps, out: x, threads: threads)
        }
        return Array(UnsafeBufferPointer(start: x, count: tokens * d))
    }

    /// Sentence embeddings: mean over each sequence's tokens (never padding), then L2.
    /// Returns one D-vector per sequence.
    public func embed(_ sequences: [[Int32]], arena: ScratchArena, threads: Int = 1) throws -> [[Float]] {
        let d = config.hiddenSize
        let states = try hiddenStates(sequences, arena: arena, threads: threads)
        var result: [[Float]] = []
        var start = 0
        for sequence in sequences {
            var pooled = [Float](repeating: 0, count: d)
            if !sequence.isEmpty {
                states.withUnsafeBufferPointer { s in
                    meanRows(s.baseAddress! + start * d, rows: sequence.count, width: d, out: &pooled)
                }
            }
            l2Normalize(&pooled)
            result.append(pooled)
            start += sequence.count
        }
        return result
    }
}

/// `towers.text.config`: the checkpoint's `config.json` names.
public struct BertConfig: Codable, Sendable {
    public var hiddenSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var intermediateSize: Int
    public var hiddenAct: String
    public var layerNormEps: Float
    public var maxPositionEmbeddings: Int
    public var typeVocabSize: Int
    public var vocabSize: Int
    public var padTokenId: Int?

    func validate() throws {
        for (key, value) in [("hidden_size", hiddenSize), ("num_hidden_layers", numHiddenLayers), ("num_attention_heads", numAttentionHeads),
                             ("intermediate_size", intermediateSize), ("max_position_embeddings", maxPositionEmbeddings),
                             ("type_vocab_size", typeVocabSize), ("vocab_size", vocabSize)] where value <= 0 {
            throw ModelError.invalidConfig(key: key, reason: "must be positive, got \(value)")
        }
        guard hiddenSize % numAttentionHeads == 0 else {
            throw ModelError.invalidConfig(key: "num_attention_heads", reason: "\(numAttentionHeads) does not divide hidden_size \(hiddenSize)")
        }
        guard hiddenAct == "gelu" else { throw ModelError.invalidConfig(key: "hidden_act", reason: "\(hiddenAct) is not supported (gelu)") }
    }
}
