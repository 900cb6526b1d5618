// Rotary positions of a fused sequence: 1-D for text (Qwen2), 3-D (temporal, height,
// width) for vision tokens when the checkpoint uses multimodal RoPE (Qwen2-VL), laid out
// as transformers 5.24 `Qwen2VLModel.get_rope_index` does, and the cos/sin tables of
// `Qwen2VLRotaryEmbedding` (`mrope_section` picks which of the three positions each
// frequency reads).

import Foundation

/// A run of tokens in a fused sequence, in order.
public enum RopeSegment: Sendable, Equatable {
    /// Tokens with consecutive 1-D positions: text, placeholders' neighbours, perceiver
    /// queries and audio tokens (which have no spatial grid).
    case sequential(count: Int)
    /// One image's merged vision tokens, a `gridHeight × gridWidth` grid (after the 2×2
    /// merge) of one temporal step, in row-major order.
    case image(gridHeight: Int, gridWidth: Int)

    var count: Int {
        switch self {
        case let .sequential(count): count
        case let .image(h, w): h * w
        }
    }
}

/// Position ids of one sequence: three rows (temporal, height, width) of T values. For
/// text they are equal; a model without multimodal RoPE reads only `temporal`.
public struct RopePositions: Sendable, Equatable {
    public var temporal: [Int32] = []
    public var height: [Int32] = []
    public var width: [Int32] = []

    public var count: Int { temporal.count }

    /// `get_rope_index`: text runs continue from the current position; an image of grid
    /// h × w starting at p gets (p, p + row, p + column) and advances p by max(h, w).
    public init(segments: [RopeSegment]) {
        var position: Int32 = 0
        for segment in segments {
            switch segment {
            case let .sequential(count):
                let run = (0..<Int32(count)).map { $0 + position }
                temporal += run
                height += run
                width += run
                position += Int32(count)
            case let .image(h, w):
                for row in 0..<Int32(h) {
                    for column in 0..<Int32(w) {
                        temporal.append(position)
                        height.append(position + row)
                        width.append(position + column)
                    }
                }
                position += Int32(max(h, w))
            }
        }
    }

    public init(temporal: [Int32], height: [Int32], width: [Int32]) {
        self.temporal = temporal
        self.height = height
        self.width = width
    }
}

/// The rotary frequencies of a decoder: inv_freq_i = 1 / θ^(2i / hd), i < hd/2, in fp32 as
/// torch computes them; with `mropeSection` [s_t, s_h, s_w] (summing to hd/2) frequency i
/// reads the temporal, height or width position by the section it falls in.
struct RotaryTable: Sendable {
    let inverseFrequencies: [Float]
    /// Which position row (0 temporal, 1 height, 2 width) each frequency reads.
    let section: [Int]

    init(headDim: Int, theta: Float, mropeSection: [Int]?) {
        let half = headDim / 2
        inverseFrequencies = (0..<half).map { i in 1 / powf(theta, Float(2 * i) / Float(headDim)) }
        if let mropeSection {
            section = mropeSection.enumerated().flatMap { index, size in [Int](repeating: index % 3, count: size) }
        } else {
            section = [Int](repeating: 0, count: half)
        }
    }

    /// cos and sin (T, hd/2) of each token's angles position · inv_freq, written to `cos`, `sin`.
    func fill(_ positions: RopePositions, cos: UnsafeMutablePointer<Float>, sin: UnsafeMutablePointer<Float>) {
        let half = inverseFrequencies.count
        for t in 0..<positions.count {
            let rows = (positions.temporal[t], positions.height[t], positions.width[t])
            for i in 0..<half {
                let position = section[i] == 0 ? rows.0 : section[i] == 1 ? rows.1 : rows.2
                let angle = Float(position) * inverseFrequencies[i]  // fp32 product, as torch
                cos[t * half + i] = Float(Foundation.cos(Double(angle)))
                sin[t * half + i] = Float(Foundation.sin(Double(angle)))
            }
        }
    }
}
