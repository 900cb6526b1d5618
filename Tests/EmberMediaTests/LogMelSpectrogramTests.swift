import Foundation
import Testing
@testable import EmberMedia

@Suite("Whisper log-mel front end")
struct LogMelSpectrogramTests {
    struct Reference: Decodable {
        struct Case: Decodable {
            let signal: String
            let samples: Int
            let mel_bins: Int
            let frames: Int
            let values: [Float]
        }
        let filters: String
        let cases: [Case]
    }

    /// Made by `Ops/media-logmel-reference` (numpy, Whisper's own mel_filters.npz).
    static func reference() throws -> Reference {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/logmel-reference.json")
        return try JSONDecoder().decode(Reference.self, from: Data(contentsOf: url))
    }

    /// The same synthetic signals as the reference script, float64 rounded to float32.
    static func signal(_ kind: String, _ n: Int) -> [Float] {
        var state: UInt64 = 12345
        return (0..<n).map { i in
            let t = Double(i) / 16_000
            switch kind {
            case "tone-chirp-noise":
                state = (1_103_515_245 * state + 12345) % 2_147_483_648
                let noise = Double(state) / 2_147_483_648.0 * 2.0 - 1.0
                return Float(0.5 * sin(2 * Double.pi * 440 * t) + 0.25 * sin(2 * Double.pi * (200 * t + 1500 * t * t)) + 0.05 * noise)
            default:  // silence-then-tone
                return i < n / 2 ? 0 : Float(0.3 * sin(2 * Double.pi * 1000 * t))
            }
        }
    }

    @Test("matches the numpy reference of Whisper's log_mel_spectrogram to 1e-3")
    func matchesReference() throws {
        let reference = try Self.reference()
        #expect(reference.filters.contains("mel_filters.npz"))
        let spectrogram = try LogMelSpectrogram()
        for testCase in reference.cases {
            let mel = try spectrogram(Self.signal(testCase.signal, testCase.samples))
            #expect(mel.bins == 80)
            #expect(mel.frames == testCase.frames)
            #expect(mel.values.count == testCase.values.count)
            let maxDiff = zip(mel.values, testCase.values).map { abs($0 - $1) }.max() ?? .infinity
            #expect(maxDiff <= 1e-3, "\(testCase.signal) n=\(testCase.samples): max abs diff \(maxDiff), first \(Array(mel.values.prefix(4))) vs \(Array(testCase.values.prefix(4)))")
        }
    }

    @Test("short audio is not padded to 30 s: n / 160 frames")
    func noPadding() throws {
        let spectrogram = try LogMelSpectrogram()
        #expect(try spectrogram(Self.signal("tone-chirp-noise", 16_000)).frames == 100)
        #expect(try spectrogram(Self.signal("tone-chirp-noise", 16_159)).frames == 100)
        #expect(try spectrogram(Self.signal("tone-chirp-noise", 159)).frames == 0)
        #expect(try spectrogram([]).values.isEmpty)
        #expect(try spectrogram(Self.signal("tone-chirp-noise", 480_000)).frames == 3000, "30 s gives Whisper's 3000")
    }

    @Test("the filterbank is Slaney-normalized and the clamp keeps 8 decades")
    func filterbankAndClamp() throws {
        let spectrogram = try LogMelSpectrogram()
        // Slaney normalization: each triangle has area 1 (in Hz), so sum(w) × 40 Hz ≈ 1 up to the 40 Hz bin sampling.
        let bins = 201
        let area = (0..<bins).map { spectrogram.filters[40 * bins + $0] }.reduce(0, +) * 40
        #expect(abs(area - 1) < 0.1, "area of filter 40: \(area)")
        let mel = try spectrogram(Self.signal("silence-then-tone", 4000))
        let top = mel.values.max() ?? 0, bottom = mel.values.min() ?? 0
        #expect(abs((top - bottom) - 2) < 1e-5, "(max−8+4)/4 floor: range \(bottom)…\(top)")
    }

    @Test("decoded audio goes straight into the front end")
    func fromDecodedAudio() throws {
        let media = try MediaDecoder(configuration: MediaFixtures.configuration()).decodeVideo(uri: try MediaFixtures.audioOnly())
        let mel = try LogMelSpectrogram()(media.audio)
        #expect(mel.frames == media.audio.count / 160)
        // A 440 Hz tone: the loudest mel bin in a middle frame is the one whose centre is nearest 440 Hz.
        let frame = mel.frames / 2
        let loudest = (0..<80).max { mel[$0, frame] < mel[$1, frame] }!
        #expect((8...12).contains(loudest), "loudest bin \(loudest)")
    }
}
