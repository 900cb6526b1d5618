import EmberContract
import Testing
@testable import EmberMedia

@Suite("Vision front end")
struct VisionFrontEndTests {
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
        let image = Self.split(width: 300, height: 256, top: (200, 100, 0), bottom: (200, 100, 0))
        let batch = try VisionFrontEnd(MediaFixtures.lite0).batch([image, image])
        #expect(batch.count == 2 && batch.size == 224 && batch.values.count == 2 * 3 * 224 * 224)
        let plane = 224 * 224
        for (channel, value) in [200, 100, 0].enumerated() {
            let expected = (Float(value) / 255 - 0.498) / 0.502
            let slice = batch.values[(3 * plane + channel * plane)..<(3 * plane + (channel + 1) * plane)]
            #expect(slice.allSatisfy { abs($0 - expected) < 1e-6 }, "channel \(channel) of frame 1")
        }
    }

    @Test("torchvision's Resize + CenterCrop geometry: longer side truncated, offsets rounded half to even")
    func geometry() {
        let lite0 = MediaFixtures.lite0
        #expect(lite0.scaledSize(width: 100, height: 400) == (256, 1024))
        #expect(lite0.scaledSize(width: 3840, height: 2160) == (455, 256))
        #expect(lite0.scaledSize(width: 16, height: 16) == (256, 256))
        #expect(lite0.placement(scaledWidth: 341, scaledHeight: 256) == .init(sourceX: 58, sourceY: 16, targetX: 0, targetY: 0, width: 224, height: 224))
        #expect(lite0.placement(scaledWidth: 343, scaledHeight: 256).sourceX == 60)
        var letterbox = lite0
        letterbox.resize = .letterbox
        #expect(letterbox.scaledSize(width: 400, height: 100) == (224, 56))
        #expect(letterbox.placement(scaledWidth: 224, scaledHeight: 56) == .init(sourceX: 0, sourceY: 0, targetX: 0, targetY: 84, width: 224, height: 56))
    }

    @Test("centre crop of a portrait image keeps the middle rows")
    func centerCrop() throws {
        // 100×400 scales to 256×1024; the centre 224×224 crop is rows 400…623, so the
        // colour boundary (row 512) sits at output row 112.
        let image = Self.split(width: 256, height: 1024, top: (255, 0, 0), bottom: (0, 0, 255))
        let tensor = try VisionFrontEnd(MediaFixtures.lite0).batch([image]).values
        let plane = 224 * 224
        let red = (Float(1) - 0.498) / 0.502, none = (Float(0) - 0.498) / 0.502
        #expect(abs(tensor[111 * 224 + 112] - red) < 1e-6 && abs(tensor[2 * plane + 111 * 224 + 112] - none) < 1e-6)
        #expect(abs(tensor[112 * 224 + 112] - none) < 1e-6 && abs(tensor[2 * plane + 112 * 224 + 112] - red) < 1e-6)
    }

    @Test("letterbox keeps the whole image and fills the bars with the mean")
    func letterbox() throws {
        var settings = MediaFixtures.lite0
        settings.resize = .letterbox
        let image = Self.split(width: 224, height: 56, top: (255, 255, 255), bottom: (255, 255, 255))
        let tensor = try VisionFrontEnd(settings).batch([image]).values
        let white = (Float(1) - 0.498) / 0.502
        #expect(tensor[10 * 224 + 100] == 0 && tensor[200 * 224 + 100] == 0)
        #expect(abs(tensor[84 * 224 + 5] - white) < 1e-6 && abs(tensor[139 * 224 + 5] - white) < 1e-6)
        #expect(tensor[83 * 224 + 100] == 0 && tensor[140 * 224 + 100] == 0)
    }

    @Test("a decoded keyframe and cover become one (N, 3, S, S) batch, scaled once by the decoder")
    func decodedFrame() throws {
        let frontEnd = try MediaFrontEnd(vision: MediaFixtures.lite0, audio: nil, media: MediaFixtures.configuration(maxFrames: 1))
        let media = try frontEnd.prepare(videoURI: try MediaFixtures.portrait(), coverURI: try MediaFixtures.portrait())
        #expect(media.decoded.frames.first.map { ($0.width, $0.height) } ?? (0, 0) == (256, 454))
        let frames = try #require(media.frames)
        #expect(frames.count == 2 && frames.size == 224)
        #expect(frames.values.allSatisfy { $0 >= -1.0 && $0 <= 1.01 })
        #expect(media.logMel == nil && media.decoded.audio.isEmpty, "no audio tower: no audio decoded")
    }

    @Test("bad settings are rejected with a typed error")
    func badSettings() {
        var zero = MediaFixtures.lite0
        zero.size = 0
        #expect(throws: ItemFailure.self) { try VisionFrontEnd(zero) }
        var oneMean = MediaFixtures.lite0
        oneMean.mean = [0]
        #expect(throws: ItemFailure.self) { try VisionFrontEnd(oneMean) }
    }
}
