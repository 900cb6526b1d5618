// Matches openai-whisper `whisper/audio.py` `log_mel_spectrogram` (n_fft 400, hop 160,
// 80 Slaney mel bins, periodic Hann window, reflect-padded centred STFT, last frame
// dropped, log10 clamped at max − 8, (x + 4) / 4), with the FFT done by FFmpeg's av_tx.
import EmberContract

#if canImport(Glibc)
    import Glibc
#endif

/// Whisper's audio front end, without padding short audio to 30 s.
///
/// For `n` samples it produces `n / hop` frames (integer division), frame `t`
/// centred on sample `t × hop`. Those are exactly the first `n / hop` frames of
/// `whisper.log_mel_spectrogram(audio, padding=N)` for any padding N ≥ n_fft/2 (what
/// `transcribe` does, and what `pad_or_trim` to 30 s amounts to): samples before
/// the start are reflected (`torch.stft(center=True)`), samples past the end are
/// the zeros of that padding, not a reflection. Whisper's padded computation has
/// frames beyond these (silence, and a last partial frame centred past the final
/// sample); we produce none of them. The only other difference is the clamp
/// floor: ours is the maximum over the frames produced, Whisper's over all its
/// frames; they differ only if the loudest frame is that partial one past the end,
/// or the audio is silent. Fewer than `hop` samples give zero frames.
public struct LogMelSpectrogram: Sendable {
    public let sampleRate: Int
    public let fftSize: Int
    public let hopLength: Int
    public let melBins: Int
    /// Slaney-scale, Slaney-normalized triangular filters, `melBins × (fftSize/2 + 1)`
    /// row-major: the same matrix as `librosa.filters.mel(sr, n_fft, n_mels)`, which
    /// Whisper ships as `mel_filters.npz`.
    public let filters: [Float]
    /// Non-zero bin range of each filter, so the projection skips the zeros.
    private let filterRanges: [Range<Int>]
    private let window: [Float]
    private let chirpZ: ChirpZTransform

    public init(sampleRate: Int = 16_000, fftSize: Int = 400, hopLength: Int = 160, melBins: Int = 80) throws(ItemFailure) {
        guard sampleRate > 0, fftSize >= 4, fftSize % 2 == 0, hopLength > 0, melBins > 0, melBins <= fftSize else {
            throw .invalid("log-mel needs a positive rate, an even FFT size, a positive hop and 1…fftSize mel bins")
        }
        self.sampleRate = sampleRate
        self.fftSize = fftSize
        self.hopLength = hopLength
        self.melBins = melBins
        let filters = Self.slaneyFilters(sampleRate: sampleRate, fftSize: fftSize, melBins: melBins)
        self.filters = filters
        let bins = fftSize / 2 + 1
        filterRanges = (0..<melBins).map { mel in
            let row = filters[(mel * bins)..<((mel + 1) * bins)]
            guard let first = row.firstIndex(where: { $0 != 0 }), let last = row.lastIndex(where: { $0 != 0 }) else { return 0..<0 }
            return (first - mel * bins)..<(last - mel * bins + 1)
        }
        // torch.hann_window(n) is periodic: 0.5 − 0.5 cos(2πi / n).
        window = (0..<fftSize).map { Float(0.5 - 0.5 * cos(2 * Double.pi * Double($0) / Double(fftSize))) }
        chirpZ = try ChirpZTransform(length: fftSize)
    }

    /// The front end a manifest's audio tower describes.
    public init(_ frontEnd: AudioFrontEnd) throws(ItemFailure) {
        guard frontEnd.melScale == "slaney" else { throw .invalid("mel scale \(frontEnd.melScale) is not supported (slaney)") }
        try self.init(sampleRate: frontEnd.sampleRate, fftSize: frontEnd.nFft, hopLength: frontEnd.hopLength, melBins: frontEnd.nMels)
    }

    /// Frames produced for `sampleCount` samples.
    public func frameCount(samples sampleCount: Int) -> Int { sampleCount / hopLength }

    /// The log-mel spectrogram of mono samples at `sampleRate`.
    public func callAsFunction(_ samples: [Float]) throws(ItemFailure) -> LogMel {
        let frames = frameCount(samples: samples.count)
        guard frames > 0 else { return LogMel(bins: melBins, frames: 0, values: []) }
        let bins = fftSize / 2 + 1

        let dft = try ChirpZTransform.Run(chirpZ)
        var power = [Float](repeating: 0, count: bins)
        var values = [Float](repeating: 0, count: melBins * frames)
        var frameSamples = [Double](repeating: 0, count: fftSize)
        let half = fftSize / 2
        let count = samples.count

        samples.withUnsafeBufferPointer { x in
            for frame in 0..<frames {
                // Window centred on frame × hop: reflected before the start, zeros after the end.
                let origin = frame * hopLength - half
                for j in 0..<fftSize {
                    let index = origin + j
                    let mirrored = index < 0 ? -index : index
                    frameSamples[j] = mirrored < count ? Double(x[mirrored] * window[j]) : 0
                }
                dft.powerSpectrum(of: frameSamples, into: &power)
                for mel in 0..<melBins {
                    var sum: Float = 0
                    let row = mel * bins
                    for k in filterRanges[mel] { sum += filters[row + k] * power[k] }
                    values[mel * frames + frame] = log10(max(sum, 1e-10))
                }
            }
        }
        let floor = (values.max() ?? 0) - 8
        for i in values.indices { values[i] = (max(values[i], floor) + 4) / 4 }
        return LogMel(bins: melBins, frames: frames, values: values)
    }

    /// librosa's `filters.mel(sr, n_fft, n_mels, fmin=0, fmax=sr/2, htk=False, norm="slaney")`.
    static func slaneyFilters(sampleRate: Int, fftSize: Int, melBins: Int) -> [Float] {
        // Slaney mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above.
        let linearStep = 200.0 / 3, knee = 1000.0, kneeMel = knee / linearStep, logStep = log(6.4) / 27
        func mel(_ hz: Double) -> Double { hz < knee ? hz / linearStep : kneeMel + log(hz / knee) / logStep }
        func hz(_ mel: Double) -> Double { mel < kneeMel ? mel * linearStep : knee * exp(logStep * (mel - kneeMel)) }

        let bins = fftSize / 2 + 1
        let top = mel(Double(sampleRate) / 2)
        let edges = (0..<(melBins + 2)).map { hz(top * Double($0) / Double(melBins + 1)) }
        var filters = [Float](repeating: 0, count: melBins * bins)
        for m in 0..<melBins {
            let (left, center, right) = (edges[m], edges[m + 1], edges[m + 2])
            let norm = 2 / (right - left)
            for k in 0..<bins {
                let f = Double(k) * Double(sampleRate) / Double(fftSize)
                let weight = max(0, min((f - left) / (center - left), (right - f) / (right - center)))
                filters[m * bins + k] = Float(weight * norm)
            }
        }
        return filters
    }
}
