/// A log-mel spectrogram: `bins × frames` values, row-major (one row per mel bin), as
/// Whisper's `log_mel_spectrogram` returns its `(n_mels, n_frames)` tensor (already
/// clamped and scaled). EmberMedia computes it, EmberModel's audio tower reads it.
public struct LogMel: Sendable, Equatable {
    public let bins: Int
    public let frames: Int
    public let values: [Float]

    public init(bins: Int, frames: Int, values: [Float]) {
        self.bins = bins
        self.frames = frames
        self.values = values
    }

    public subscript(bin: Int, frame: Int) -> Float { values[bin * frames + frame] }
}
