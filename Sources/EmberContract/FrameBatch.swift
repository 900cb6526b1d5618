/// An item's frames in the vision tower's input layout: `(N, 3, S, S)` floats,
/// contiguous, each frame CHW and normalized as its `VisionPreprocessing` says.
/// EmberMedia writes decoded frames straight into it; EmberModel reads it as is.
public struct FrameBatch: Sendable, Equatable {
    /// S: frames are `3 × size × size`.
    public let size: Int
    /// N.
    public let count: Int
    public let values: [Float]

    /// Values per frame: `3 × size × size`.
    public var frameValues: Int { 3 * size * size }

    public init(size: Int, count: Int, values: [Float]) {
        precondition(size > 0 && count >= 0 && values.count == count * 3 * size * size, "FrameBatch needs N×3×S×S values")
        self.size = size
        self.count = count
        self.values = values
    }

    /// A batch whose `count` frames are written by `body` into one zeroed buffer, frame i
    /// at offset `i × frameValues`.
    public init<E: Error>(
        size: Int, count: Int, _ body: (UnsafeMutableBufferPointer<Float>) throws(E) -> Void
    ) throws(E) {
        var values = [Float](repeating: 0, count: count * 3 * size * size)
        try values.withUnsafeMutableBufferPointer { (buffer) throws(E) in try body(buffer) }
        self.init(size: size, count: count, values: values)
    }
}
