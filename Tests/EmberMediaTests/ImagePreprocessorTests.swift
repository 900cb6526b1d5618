import Testing
@testable import EmberMedia

@Suite("Image preprocessing")
struct ImagePreprocessorTests {
    /// An image whose top half is one colour and bottom half another.
    static func split(width: Int, height: Int, top: (UInt8, UInt8, UInt8), bottom: (UInt8, UInt8, UInt8)) -> RGBImage {
        var pixels: [UInt8] = []
        pixels.reserveCapacity(width * height * 3)
        for y in 0..<height {
            let c = y < height / 2 ? top : bottom
            for _ in 0..<width { pixels += [c.0, c.1, c.2] }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    @Test("solid colours normalize to (v/255 − mean)/std in CHW order")
    func normalization() throws {
        let preprocessor = try ImagePreprocessor(.efficientNetLite0)
        let image = RGBImage(width: 300, height: 200, pixels: [UInt8](repeating: 0, count: 300 * 200 * 3).enumerated().map { [UInt8(200), 100, 0][$0.offset % 3] })
        let tensor = try preprocessor(image)
        #expect(tensor.count == 3 * 224 * 224)
        let plane = 224 * 224
        for (channel, value) in [200, 100, 0].enumerated() {
            let expected = (Float(value) / 255 - 0.498) / 0.502
            let slice = tensor[(channel * plane)..<((channel + 1) * plane)]
            #expect(slice.allSatisfy { abs($0 - expected) < 1e-5 }, "channel \(channel)")
        }
    }

    @Test("centre crop of a portrait image keeps the middle rows")
    func centerCrop() throws {
        // 100×400 → shorter side 256 → 256×1024 → centre 224×224 crop is rows 400…623:
        // the colour boundary (row 512) sits at output row 112.
        let image = Self.split(width: 100, height: 400, top: (255, 0, 0), bottom: (0, 0, 255))
        let tensor = try ImagePreprocessor(.efficientNetLite0)(image)
        let plane = 224 * 224
        let red = (Float(1) - 0.498) / 0.502, none = (Float(0) - 0.498) / 0.502
        #expect(abs(tensor[100 * 224 + 112] - red) < 1e-4)  // R at row 100
        #expect(abs(tensor[2 * plane + 100 * 224 + 112] - none) < 1e-4)  // B at row 100
        #expect(abs(tensor[124 * 224 + 112] - none) < 1e-4)  // R at row 124
        #expect(abs(tensor[2 * plane + 124 * 224 + 112] - red) < 1e-4)  // B at row 124
    }

    @Test("letterbox keeps the whole image and fills the bars with the mean")
    func letterbox() throws {
        var settings = ImagePreprocessing.efficientNetLite0
        settings.resize = .letterbox
        let image = Self.split(width: 400, height: 100, top: (255, 255, 255), bottom: (255, 255, 255))
        let tensor = try ImagePreprocessor(settings)(image)
        // 400×100 → 224×56, rows 84…139; rows above and below are bars (0 after normalization).
        let white = (Float(1) - 0.498) / 0.502
        #expect(tensor[10 * 224 + 100] == 0 && tensor[200 * 224 + 100] == 0)
        #expect(abs(tensor[112 * 224 + 100] - white) < 1e-3)
        #expect(abs(tensor[84 * 224 + 5] - white) < 0.02 && abs(tensor[139 * 224 + 5] - white) < 0.02)
        #expect(tensor[83 * 224 + 100] == 0 && tensor[140 * 224 + 100] == 0)
    }

    @Test("a decoded keyframe preprocesses to the model's input size")
    func decodedFrame() throws {
        let media = try MediaDecoder(configuration: MediaFixtures.configuration(maxFrames: 1, shorterSide: 256)).decodeVideo(uri: try MediaFixtures.portrait())
        let frame = try #require(media.frames.first)
        let tensor = try ImagePreprocessor(.efficientNetLite0)(frame)
        #expect(tensor.count == 3 * 224 * 224)
        #expect(tensor.allSatisfy { $0 >= -1.0 && $0 <= 1.01 })
    }

    @Test("bad settings are rejected with a typed error")
    func badSettings() {
        #expect(throws: MediaError.self) {
            try ImagePreprocessor(ImagePreprocessing(width: 0, height: 224, resize: .letterbox, mean: [0, 0, 0], std: [1, 1, 1]))
        }
        #expect(throws: MediaError.self) {
            try ImagePreprocessor(ImagePreprocessing(width: 224, height: 224, resize: .letterbox, mean: [0], std: [1, 1, 1]))
        }
    }
}
