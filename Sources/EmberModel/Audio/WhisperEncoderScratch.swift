// What one WhisperEncoder pass carves from its arena: the encoder states x of all clips
// (the result), and per worker, one block each, so threads running whole clips side by side
// never share one, buffers for the longest clip: the front end's (fp32: im2col columns and
// conv1's output; bf16: the mel and conv1's output as time-major bf16 rows), context, qkv,
// fp32's normed input and feed-forward hidden layer or bf16's rounded input rows of the
// linear layers (bf16 normalizes and keeps hidden rows inside its kernels), one attention
// score block, and bf16's attention and feed-forward blocks. A clip
// that runs on several threads uses the blocks of workers 0 ..< threads for the kernels'
// per-thread scratch (attention, feed-forward) and worker 0's for the rest.

import CEmberBF16

extension WhisperEncoder {
    struct ScratchPlan {
        let tokens: Int
        let d: Int
        let threads: Int
        let worker: Buffers.Sizes

        init(_ encoder: WhisperEncoder, frames: [Int], threads: Int) {
            let c = encoder.config
            d = c.dModel
            self.threads = max(threads, 1)
            let bf16 = encoder.precision == .bf16
            let lengths = frames.map(encoder.positions(forFrames:))
            tokens = lengths.reduce(0, +)
            let longest = frames.max() ?? 0, maxLength = lengths.max() ?? 0
            let frontEnd = encoder.conv1BF16 != nil
                ? (PaddedTimeRows.elements(channels: c.numMelBins, frames: longest, padding: 1)
                    + PaddedTimeRows.elements(channels: d, frames: longest, padding: 1) + 1) / 2
                : longest * (max(c.numMelBins, d) * 3 + d)
            worker = Buffers.Sizes(
                frontEnd: frontEnd, normed: bf16 ? 0 : maxLength * d, context: maxLength * d, qkv: maxLength * 3 * d,
                hidden: bf16 ? 0 : maxLength * c.encoderFfnDim, rows: bf16 ? maxLength * ember_bf16_rows_count(1, Int32(d)) / 2 : 0,
                scores: maxLength * maxLength,
                attention: bf16 ? attentionBF16ScratchFloats(maxLength: maxLength, headDim: d / c.encoderAttentionHeads) : 0,
                feedForward: bf16 ? feedForwardBF16ScratchFloats(width: d, hiddenWidth: c.encoderFfnDim, threads: 1) : 0)
        }

        var floats: Int { tokens * d + threads * worker.total }

        func carve(_ arena: ScratchArena) -> Buffers {
            let s = worker
            return Buffers(
                x: arena.carve(tokens * d), sizes: s,
                frontEnd: arena.carve(threads * s.frontEnd), normed: arena.carve(threads * s.normed), context: arena.carve(threads * s.context),
                qkv: arena.carve(threads * s.qkv), hidden: arena.carve(threads * s.hidden), rows: arena.carve(threads * s.rows),
                scores: arena.carve(threads * s.scores), attention: arena.carve(threads * s.attention), feedForward: arena.carve(threads * s.feedForward))
        }
    }

    /// The carved buffers: `x` for all clips, the rest as `threads` blocks of `sizes` floats each.
    struct Buffers {
        struct Sizes {
            let frontEnd, normed, context, qkv, hidden, rows, scores, attention, feedForward: Int
            var total: Int { frontEnd + normed + context + qkv + hidden + rows + scores + attention + feedForward }
        }

        let x: UnsafeMutablePointer<Float>
        let sizes: Sizes
        let frontEnd, normed, context, qkv, hidden, rows, scores, attention, feedForward: UnsafeMutablePointer<Float>
    }
}
