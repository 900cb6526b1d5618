/// How an audio tower wants its input: the `towers.audio.preprocessing` object of the
/// manifest, written by the converter. EmberMedia decodes `windowSeconds` of mono audio
/// at `sampleRate` and computes the log-mel from it; EmberModel reads `nMels × T`
/// log-mels with T ≤ `windowFrames`. The window is enforced once, where audio is decoded.
public struct AudioFrontEnd: Sendable, Equatable, Codable {
    public var sampleRate: Int
    public var nFft: Int
    public var hopLength: Int
    public var nMels: Int
    /// Mel scale of the filterbank; `slaney` (librosa's default, Whisper's `mel_filters.npz`).
    public var melScale: String
    /// Seconds of audio the tower reads, from the start (Whisper: 30).
    public var windowSeconds: Double

    public init(sampleRate: Int, nFft: Int, hopLength: Int, nMels: Int, melScale: String = "slaney", windowSeconds: Double) {
        self.sampleRate = sampleRate
        self.nFft = nFft
        self.hopLength = hopLength
        self.nMels = nMels
        self.melScale = melScale
        self.windowSeconds = windowSeconds
    }

    /// Samples in the window.
    public var windowSamples: Int { Int(windowSeconds * Double(sampleRate)) }
    /// Log-mel frames of a full window: one per `hopLength` samples.
    public var windowFrames: Int { windowSamples / hopLength }

    /// Seconds of audio behind `frames` log-mel frames.
    public func seconds(frames: Int) -> Double { Double(frames * hopLength) / Double(sampleRate) }

    /// Why these values cannot work; nil when they can.
    public var problem: String? {
        if sampleRate <= 0 || hopLength <= 0 { return "sample_rate and hop_length must be positive" }
        if nFft < 4 || nFft % 2 != 0 { return "n_fft must be even and at least 4, got \(nFft)" }
        if nMels <= 0 || nMels > nFft { return "n_mels must be 1…n_fft, got \(nMels)" }
        if melScale != "slaney" { return "mel_scale \(melScale) is not supported (slaney)" }
        if !(windowSeconds > 0) || windowFrames < 1 { return "window_seconds must give at least one frame" }
        return nil
    }
}
