import EmberContract

// The Qwen2-VL vision tower's input: Hugging Face `Qwen2VLImageProcessor.patchify`'s
// `pixel_values` layout and `image_grid_thw`, from frames already resized to multiples of
// patch_size · spatial_merge_size and normalized (OpenAI CLIP mean/std for Qwen2-VL).
//
// Row order within an image: merge blocks row-major, then the m×m patches of a block
// row-major — (h/m, w/m, m, m) — so the PatchMerger's 2×2 groups are consecutive rows.
// Columns: (C, T, P, P); a still image fills both temporal slots with the same frame.

/// One image's grid in patches (`image_grid_thw` row): t temporal patches, h × w spatial.
public struct Qwen2VisionGrid: Sendable, Equatable, Hashable {
    public let t: Int
    public let h: Int
    public let w: Int

    public init(t: Int, h: Int, w: Int) {
        self.t = t
        self.h = h
        self.w = w
    }

    /// Patches (rows of `pixel_values`): t · h · w.
    public var patches: Int { t * h * w }
}

/// Patches of several images, packed: `values` is (Σ patches, C · T · P · P) row-major.
public struct Qwen2VisionPatches: Sendable, Equatable {
    public let values: [Float]
    public let grids: [Qwen2VisionGrid]

    /// Hugging Face's `pixel_values` (flattened) and `image_grid_thw` as they are; checked
    /// against `config` (patch width, grids divisible by the merge size).
    public init(values: [Float], grids: [Qwen2VisionGrid], config: Qwen2VisionConfig) throws {
        let m = config.spatialMergeSize
        for g in grids where g.t < 1 || g.h < m || g.w < m || g.h % m != 0 || g.w % m != 0 {
            throw ModelError.invalidInput("image grid \(g.t)×\(g.h)×\(g.w) must have t ≥ 1 and h, w positive multiples of spatial_merge_size \(m)")
        }
        let rows = grids.reduce(0) { $0 + $1.patches }
        guard values.count == rows * config.patchValues else {
            throw ModelError.invalidInput("pixel_values has \(values.count) values, grids need \(rows) × \(config.patchValues)")
        }
        self.values = values
        self.grids = grids
    }

    /// Each frame of `frames` (N, 3, S, S), normalized, as one still image (t = 1).
    public init(frames: FrameBatch, config: Qwen2VisionConfig) throws {
        let grid = try Qwen2VisionGrid(stillHeight: frames.size, width: frames.size, channels: 3, config: config)
        let perImage = grid.patches * config.patchValues
        var values = [Float](repeating: 0, count: frames.count * perImage)
        values.withUnsafeMutableBufferPointer { out in
            frames.values.withUnsafeBufferPointer { source in
                for i in 0..<frames.count {
                    patchify(source.baseAddress! + i * frames.frameValues, height: frames.size, width: frames.size, config: config,
                             out: out.baseAddress! + i * perImage)
                }
            }
        }
        self.values = values
        self.grids = Array(repeating: grid, count: frames.count)
    }

    /// Still images of one size, each (C, height, width) normalized floats.
    public init(images: [[Float]], height: Int, width: Int, config: Qwen2VisionConfig) throws {
        let grid = try Qwen2VisionGrid(stillHeight: height, width: width, channels: config.inChannels, config: config)
        for image in images where image.count != config.inChannels * height * width {
            throw ModelError.invalidInput("an image has \(image.count) values, expected \(config.inChannels)×\(height)×\(width)")
        }
        let perImage = grid.patches * config.patchValues
        var values = [Float](repeating: 0, count: images.count * perImage)
        values.withUnsafeMutableBufferPointer { out in
            for (i, image) in images.enumerated() {
                image.withUnsafeBufferPointer { patchify($0.baseAddress!, height: height, width: width, config: config, out: out.baseAddress! + i * perImage) }
            }
        }
        self.values = values
        self.grids = Array(repeating: grid, count: images.count)
    }
}

extension Qwen2VisionGrid {
    /// The grid of a still image of `height` × `width` pixels with `channels` channels; a
    /// size that is not a positive multiple of patch_size · spatial_merge_size is an error.
    init(stillHeight height: Int, width: Int, channels: Int, config: Qwen2VisionConfig) throws {
        let p = config.patchSize, side = p * config.spatialMergeSize
        guard channels == config.inChannels else {
            throw ModelError.invalidInput("images have \(channels) channels, the tower takes in_channels \(config.inChannels)")
        }
        guard height >= side, width >= side, height % side == 0, width % side == 0 else {
            throw ModelError.invalidInput("images must be positive multiples of patch_size × spatial_merge_size = \(side) on each side, got \(height)×\(width)")
        }
        self.init(t: 1, h: height / p, w: width / p)
    }
}

/// One still image (C, H, W) into patch rows (h·w, C·T·P·P), merge-block order, the frame
/// repeated in each of the T temporal slots.
func patchify(_ image: UnsafePointer<Float>, height: Int, width: Int, config: Qwen2VisionConfig, out: UnsafeMutablePointer<Float>) {
    let p = config.patchSize, m = config.spatialMergeSize, channels = config.inChannels, temporal = config.temporalPatchSize
    let blocksH = height / (p * m), blocksW = width / (p * m), rowValues = channels * temporal * p * p
    var row = out
    for bh in 0..<blocksH {
        for bw in 0..<blocksW {
            for mh in 0..<m {
                for mw in 0..<m {
                    let top = (bh * m + mh) * p, left = (bw * m + mw) * p
                    var column = row
                    for c in 0..<channels {
                        for _ in 0..<temporal {
                            for y in 0..<p {
                                let source = image + (c * height + top + y) * width + left
                                column.update(from: source, count: p)
                                column += p
                            }
                        }
                    }
                    row += rowValues
                }
            }
        }
    }
}
