/// How a vision tower wants its frames: the `towers.vision.preprocessing` object of
/// the manifest, written by the converter (`Ops/reference/ember_convert.py`). EmberMedia
/// builds its scaler and normalizer from it; EmberModel checks frames against `size`.
/// Changing a tower's preprocessing is a change of this object in the manifest only.
public struct VisionPreprocessing: Sendable, Equatable, Codable {
    public enum Resize: String, Sendable, Codable {
        /// torchvision's eval transform: `Resize(resizeShorterSide)` (shorter side to that
        /// length, longer side truncated), then `CenterCrop(size)` (offsets rounded).
        case centerCrop = "center_crop"
        /// The whole image scaled to fit in `size × size`, centred; the bars are the
        /// mean colour (0 after normalization).
        case letterbox
    }

    /// The scaling filter (swscale's, matching PIL's for these two names).
    public enum Interpolation: String, Sendable, Codable {
        case bicubic
        case bilinear
    }

    /// S: the tower reads `3 × S × S` frames.
    public var size: Int
    public var resize: Resize
    /// `center_crop` only: the shorter side before cropping (raised to `size` when smaller).
    public var resizeShorterSide: Int?
    public var interpolation: Interpolation
    /// Per-channel R, G, B on the 0…1 scale: value = (pixel / 255 − mean) / std.
    public var mean: [Float]
    public var std: [Float]

    public init(size: Int, resize: Resize, resizeShorterSide: Int? = nil, interpolation: Interpolation, mean: [Float], std: [Float]) {
        self.size = size
        self.resize = resize
        self.resizeShorterSide = resizeShorterSide
        self.interpolation = interpolation
        self.mean = mean
        self.std = std
    }

    /// Why these values cannot work, naming the manifest key; nil when they can.
    public var problem: String? {
        if size <= 0 || size > 4096 { return "size must be 1…4096, got \(size)" }
        if mean.count != 3 || std.count != 3 { return "mean and std need 3 values each" }
        if !std.allSatisfy({ $0 > 0 && $0.isFinite }) || !mean.allSatisfy(\.isFinite) { return "std must be positive and mean finite" }
        if resize == .centerCrop, (resizeShorterSide ?? 0) <= 0 { return "center_crop needs a positive resize_shorter_side" }
        return nil
    }

    /// The size a `width × height` image is scaled to, once, before it is cropped or
    /// placed: every side at least 1. Symmetric in width and height, so a frame turned
    /// by 90° scales to the turned size.
    public func scaledSize(width: Int, height: Int) -> (width: Int, height: Int) {
        guard width > 0, height > 0 else { return (width, height) }
        switch resize {
        case .centerCrop:
            // torchvision Resize(S'): shorter side S' (at least the crop), longer side S'·ratio truncated.
            let short = Double(min(width, height)), long = Double(max(width, height))
            let side = max(resizeShorterSide ?? size, size)
            let longSide = max(size, Int(Double(side) * long / short))
            return width <= height ? (side, longSide) : (longSide, side)
        case .letterbox:
            let scale = min(Double(size) / Double(width), Double(size) / Double(height))
            return (min(size, max(1, Int((Double(width) * scale).rounded()))), min(size, max(1, Int((Double(height) * scale).rounded()))))
        }
    }

    /// Where a scaled image meets the `size × size` output: the `width × height` window
    /// at (`sourceX`, `sourceY`) of the scaled image lands at (`targetX`, `targetY`).
    public struct Placement: Sendable, Equatable {
        public var sourceX, sourceY, targetX, targetY, width, height: Int

        public init(sourceX: Int, sourceY: Int, targetX: Int, targetY: Int, width: Int, height: Int) {
            (self.sourceX, self.sourceY, self.targetX, self.targetY, self.width, self.height) = (sourceX, sourceY, targetX, targetY, width, height)
        }
    }

    /// The crop (`center_crop`) or the placement in the bars (`letterbox`) of an image
    /// already scaled to `scaledSize`.
    public func placement(scaledWidth: Int, scaledHeight: Int) -> Placement {
        // torchvision's CenterCrop offset: int(round((scaled − crop) / 2)), Python's round
        // (half to even): 341 → 224 starts at 58, not 59.
        let width = min(size, scaledWidth), height = min(size, scaledHeight)
        let offset = { (excess: Int) in Int((Double(excess) / 2).rounded(.toNearestOrEven)) }
        return Placement(
            sourceX: offset(scaledWidth - width), sourceY: offset(scaledHeight - height),
            targetX: (size - width) / 2, targetY: (size - height) / 2, width: width, height: height)
    }
}
