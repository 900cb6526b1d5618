/// An 8-bit RGB image, rows packed without padding.
public struct RGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// `width * height * 3` bytes, row-major, R G B interleaved.
    public let pixels: [UInt8]
    /// Presentation time in seconds, when the source had one.
    public let timestampSeconds: Double?

    public init(width: Int, height: Int, pixels: [UInt8], timestampSeconds: Double? = nil) {
        precondition(pixels.count == width * height * 3, "RGBImage needs width*height*3 bytes")
        self.width = width
        self.height = height
        self.pixels = pixels
        self.timestampSeconds = timestampSeconds
    }

    public func pixel(x: Int, y: Int) -> (r: UInt8, g: UInt8, b: UInt8) {
        let i = (y * width + x) * 3
        return (pixels[i], pixels[i + 1], pixels[i + 2])
    }
}
