import EmberContract

/// The second half of a vision tower's preprocessing: crop (or place) and normalize an
/// image that the decoder already scaled to the preprocessing's `scaledSize`, written
/// straight into its slot of the tower's `(N, 3, S, S)` batch. Pure Swift; the scaling
/// itself happens once, in the decoder's RGB conversion (`FrameConverter`).
public struct VisionFrontEnd: Sendable {
    public let preprocessing: VisionPreprocessing

    public init(_ preprocessing: VisionPreprocessing) throws(ItemFailure) {
        if let problem = preprocessing.problem { throw .invalid("vision preprocessing: \(problem)") }
        self.preprocessing = preprocessing
    }

    /// The frames (already scaled) as one batch, in order.
    public func batch(_ images: [RGBImage]) throws(ItemFailure) -> FrameBatch {
        let size = preprocessing.size
        return try FrameBatch(size: size, count: images.count) { (values) throws(ItemFailure) in
            let frame = 3 * size * size
            for (i, image) in images.enumerated() {
                try write(image, into: UnsafeMutableBufferPointer(rebasing: values[(i * frame)..<((i + 1) * frame)]))
            }
        }
    }

    /// Writes one scaled image as CHW `(pixel / 255 − mean) / std` into `slot` (3 × S × S
    /// floats, zeroed: letterbox bars stay 0, the mean colour).
    public func write(_ image: RGBImage, into slot: UnsafeMutableBufferPointer<Float>) throws(ItemFailure) {
        let size = preprocessing.size, plane = size * size
        guard slot.count == 3 * plane else { throw .invalid("frame slot holds \(slot.count) floats, needs \(3 * plane)") }
        guard image.width > 0, image.height > 0 else { throw .invalid("empty image") }
        let window = preprocessing.placement(scaledWidth: image.width, scaledHeight: image.height)
        let scales = (0..<3).map { 1 / (255 * preprocessing.std[$0]) }
        let offsets = (0..<3).map { -preprocessing.mean[$0] / preprocessing.std[$0] }
        image.pixels.withUnsafeBufferPointer { pixels in
            for y in 0..<window.height {
                let source = ((window.sourceY + y) * image.width + window.sourceX) * 3
                let target = (window.targetY + y) * size + window.targetX
                for x in 0..<window.width {
                    let s = source + x * 3
                    slot[target + x] = Float(pixels[s]) * scales[0] + offsets[0]
                    slot[plane + target + x] = Float(pixels[s + 1]) * scales[1] + offsets[1]
                    slot[2 * plane + target + x] = Float(pixels[s + 2]) * scales[2] + offsets[2]
                }
            }
        }
    }
}
