import CFFmpeg

/// How a vision tower wants its input image (from the model manifest).
public struct ImagePreprocessing: Sendable, Equatable {
    public enum Resize: Sendable, Equatable {
        /// Scale so the shorter side is `shorterSide` (torchvision `Resize(shorterSide)`:
        /// longer side truncated), then cut the centre `width × height`
        /// (`CenterCrop`, offsets rounded). `shorterSide` below the crop is raised to it.
        case centerCrop(shorterSide: Int)
        /// Scale so the whole image fits in `width × height`, centred; the bars are
        /// filled with the mean colour (0 after normalization).
        case letterbox
    }

    public var width: Int
    public var height: Int
    public var resize: Resize
    /// Per-channel R, G, B mean and standard deviation on the 0…1 scale:
    /// output = (pixel / 255 − mean) / std.
    public var mean: [Float]
    public var std: [Float]

    /// EfficientNet-Lite0 (the default vision tower): 224 × 224 centre crop of the
    /// image scaled to a 256 shorter side (crop padding 32), mean 0.498, std 0.502.
    public static let efficientNetLite0 = ImagePreprocessing(
        width: 224, height: 224, resize: .centerCrop(shorterSide: 256),
        mean: [0.498, 0.498, 0.498], std: [0.502, 0.502, 0.502])

    public init(width: Int, height: Int, resize: Resize, mean: [Float], std: [Float]) {
        self.width = width
        self.height = height
        self.resize = resize
        self.mean = mean
        self.std = std
    }
}

/// Turns decoded RGB images into the model's input tensor: RGB float, CHW
/// (3 × height × width), normalized. Scaling is swscale's bicubic filter.
public struct ImagePreprocessor: Sendable {
    public let preprocessing: ImagePreprocessing

    public init(_ preprocessing: ImagePreprocessing) throws(MediaError) {
        guard preprocessing.width > 0, preprocessing.height > 0, preprocessing.width * preprocessing.height <= 1 << 24,
            preprocessing.mean.count == 3, preprocessing.std.count == 3, preprocessing.std.allSatisfy({ $0 != 0 })
        else {
            throw .invalid("image preprocessing needs a positive size, 3 means and 3 non-zero stds: \(preprocessing)")
        }
        self.preprocessing = preprocessing
    }

    /// Values per image: 3 × height × width.
    public var count: Int { 3 * preprocessing.width * preprocessing.height }

    /// One image as a CHW float tensor.
    public func callAsFunction(_ image: RGBImage) throws(MediaError) -> [Float] {
        var output = [Float](repeating: 0, count: count)
        try output.withUnsafeMutableBufferPointer { (buffer) throws(MediaError) in try process(image, into: buffer) }
        return output
    }

    /// Writes one image into `output` (`count` floats), e.g. a slot of a batch tensor.
    public func process(_ image: RGBImage, into output: UnsafeMutableBufferPointer<Float>) throws(MediaError) {
        guard output.count >= count else { throw .invalid("output buffer holds \(output.count) floats, needs \(count)") }
        guard image.width > 0, image.height > 0 else { throw .invalid("empty image") }
        let (width, height) = (preprocessing.width, preprocessing.height)
        // Scaled size, and where the output window sits in it (crop) or it in the output (letterbox).
        let scaledWidth: Int, scaledHeight: Int
        switch preprocessing.resize {
        case .centerCrop(let shorterSide):
            // torchvision Resize(S): shorter side S, longer side S × ratio truncated;
            // S is raised when needed so that the crop fits inside.
            let short = Double(min(image.width, image.height)), long = Double(max(image.width, image.height))
            let cropShort = Double(image.width <= image.height ? width : height)
            let cropLong = Double(image.width <= image.height ? height : width)
            let side = max(Double(shorterSide), cropShort, (cropLong * short / long).rounded(.up))
            let longSide = max(Int(cropLong), Int(side * long / short))
            (scaledWidth, scaledHeight) = image.width <= image.height ? (Int(side), longSide) : (longSide, Int(side))
        case .letterbox:
            let scale = min(Double(width) / Double(image.width), Double(height) / Double(image.height))
            scaledWidth = min(width, max(1, Int((Double(image.width) * scale).rounded())))
            scaledHeight = min(height, max(1, Int((Double(image.height) * scale).rounded())))
        }
        let scaled = try scale(image, toWidth: scaledWidth, height: scaledHeight)

        let plane = width * height
        for channel in 0..<3 {
            let base = channel * plane
            for i in 0..<plane { output[base + i] = 0 }  // letterbox bars: the mean colour
        }
        let scales = (0..<3).map { 1 / (255 * preprocessing.std[$0]) }
        let offsets = (0..<3).map { -preprocessing.mean[$0] / preprocessing.std[$0] }
        // Copy window: source origin in the scaled image, destination origin in the output.
        let copyWidth = min(width, scaledWidth), copyHeight = min(height, scaledHeight)
        let sourceX = Int(((Double(scaledWidth - copyWidth)) / 2).rounded())
        let sourceY = Int(((Double(scaledHeight - copyHeight)) / 2).rounded())
        let targetX = (width - copyWidth) / 2, targetY = (height - copyHeight) / 2
        scaled.withUnsafeBufferPointer { pixels in
            for y in 0..<copyHeight {
                let sourceRow = ((sourceY + y) * scaledWidth + sourceX) * 3
                let targetRow = (targetY + y) * width + targetX
                for x in 0..<copyWidth {
                    let s = sourceRow + x * 3
                    output[targetRow + x] = Float(pixels[s]) * scales[0] + offsets[0]
                    output[plane + targetRow + x] = Float(pixels[s + 1]) * scales[1] + offsets[1]
                    output[2 * plane + targetRow + x] = Float(pixels[s + 2]) * scales[2] + offsets[2]
                }
            }
        }
    }

    /// RGB24 → RGB24 at another size with swscale.
    private func scale(_ image: RGBImage, toWidth width: Int, height: Int) throws(MediaError) -> [UInt8] {
        if width == image.width && height == image.height { return image.pixels }
        guard let scaler = sws_getContext(
            Int32(image.width), Int32(image.height), AV_PIX_FMT_RGB24,
            Int32(width), Int32(height), AV_PIX_FMT_RGB24, SWS_BICUBIC, nil, nil, nil)
        else { throw .invalid("cannot scale \(image.width)x\(image.height) to \(width)x\(height)") }
        defer { sws_freeContext(scaler) }
        var output = [UInt8](repeating: 0, count: width * height * 3)
        let status = image.pixels.withUnsafeBufferPointer { source -> Int32 in
            output.withUnsafeMutableBufferPointer { destination -> Int32 in
                var sourcePlane: UnsafePointer<UInt8>? = source.baseAddress
                var sourceStride = Int32(image.width * 3)
                var destinationPlane: UnsafeMutablePointer<UInt8>? = destination.baseAddress
                var destinationStride = Int32(width * 3)
                return sws_scale(scaler, &sourcePlane, &sourceStride, 0, Int32(image.height), &destinationPlane, &destinationStride)
            }
        }
        guard status > 0 else { throw .invalid("scaling \(image.width)x\(image.height) to \(width)x\(height) failed (\(status))") }
        return output
    }
}
