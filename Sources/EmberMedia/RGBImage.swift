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

extension RGBImage {
    /// The image turned clockwise by 90, 180 or 270 degrees (anything else: unchanged).
    func rotated(clockwise degrees: Int) -> RGBImage {
        let turn = ((degrees % 360) + 360) % 360
        guard turn == 90 || turn == 180 || turn == 270 else { return self }
        let (outWidth, outHeight) = turn == 180 ? (width, height) : (height, width)
        var out = [UInt8](repeating: 0, count: pixels.count)
        pixels.withUnsafeBufferPointer { source in
            out.withUnsafeMutableBufferPointer { target in
                for y in 0..<outHeight {
                    for x in 0..<outWidth {
                        // Source pixel that lands on (x, y).
                        let (sx, sy): (Int, Int)
                        switch turn {
                        case 90: (sx, sy) = (y, height - 1 - x)
                        case 180: (sx, sy) = (width - 1 - x, height - 1 - y)
                        default: (sx, sy) = (width - 1 - y, x)
                        }
                        let s = (sy * width + sx) * 3, t = (y * outWidth + x) * 3
                        target[t] = source[s]
                        target[t + 1] = source[s + 1]
                        target[t + 2] = source[s + 2]
                    }
                }
            }
        }
        return RGBImage(width: outWidth, height: outHeight, pixels: out, timestampSeconds: timestampSeconds)
    }
}
