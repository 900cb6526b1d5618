import CoreMetrics
import EmberContract
import EmberModel
import Logging

/// A transcript Ember made from an item's audio, as the output record carries it.
public struct GeneratedTranscript: Sendable, Equatable {
    public var text: String
    /// Whisper's language code (`en`, `zh`, …).
    public var language: String

    public init(text: String, language: String) {
        self.text = text
        self.language = language
    }
}

/// The worker's ASR step (`asr.enabled`): transcribes an item's decoded audio on the
/// embed lane that embeds it, before the text tower runs. A failure to transcribe is
/// logged and counted, never a dead letter: the item is embedded without a transcript.
public struct SpeechTranscription: Sendable {
    public let transcriber: SpeechTranscriber
    /// Threads one transcription may use (the lane's `model.threads`).
    public let threads: Int
    let logger: Logger
    private let transcriptions = Counter(label: "ember_asr_transcriptions_total")
    private let skipped: [String: Counter] = Dictionary(uniqueKeysWithValues: ["energy", "no_speech", "low_confidence", "repetition", "empty", "error"].map {
        ($0, Counter(label: "ember_asr_skipped_total", dimensions: [("reason", $0)]))
    })
    private let seconds = FloatingPointCounter(label: "ember_asr_audio_seconds_total")
    private let duration = CoreMetrics.Timer(label: "ember_asr_duration_seconds", preferredDisplayUnit: .seconds)

    public init(transcriber: SpeechTranscriber, threads: Int, logger: Logger) {
        self.transcriber = transcriber
        self.threads = max(1, threads)
        self.logger = logger
    }

    /// The transcript of `mel`, or nil when it holds no speech (or transcription failed).
    public func transcript(of mel: LogMel, itemID: String) -> GeneratedTranscript? {
        let started = ContinuousClock.now
        defer { duration.recordInterval(since: started) }
        do {
            switch try transcriber.transcribe(mel, threads: threads) {
            case .transcript(let transcript) where !transcript.text.isEmpty:
                transcriptions.increment()
                seconds.increment(by: transcript.seconds)
                return GeneratedTranscript(text: transcript.text, language: transcript.language)
            case .transcript:
                skipped["empty"]?.increment()
            case .skipped(let reason, _):
                skipped[reason.rawValue]?.increment()
            }
        } catch {
            skipped["error"]?.increment()
            logger.warning("speech transcription failed; the item is embedded without it", metadata: ["item_id": "\(itemID)", "error": "\(error)"])
        }
        return nil
    }
}

extension CoreMetrics.Timer {
    fileprivate func recordInterval(since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
    }
}
