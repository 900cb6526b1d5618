// Speech transcription with the audio tower's checkpoint, decoding as openai/whisper
// `decoding.py` does at temperature 0 without timestamps: the clip padded to Whisper's
// 30 s window, `<|startoftranscript|>` → (multilingual: the detected language,
// `<|transcribe|>`) → `<|notimestamps|>`, then greedy tokens until `<|endoftext|>`,
// with `SuppressBlank` and `SuppressTokens`. Two cheap gates skip clips without speech
// before the greedy loop: the log-mel's peak energy (silence), then the no-speech
// probability of the first step (tone, music, noise).

import EmberContract
import Foundation

/// What transcribing one clip gave.
public enum TranscriptionOutcome: Sendable, Equatable {
    case transcript(Transcript)
    /// Skipped: `energy` when the clip is too quiet to hold speech (the decoder did not
    /// run), `noSpeech` when the first step's no-speech probability exceeded the threshold,
    /// `lowConfidence` when the greedy tokens' mean log-probability fell below Whisper's
    /// `logprob_threshold` (where Whisper would resample at a higher temperature; a steady
    /// tone gives tiny.en a one-word "You" at −1.4), `repetition` when the tokens fell into
    /// a loop (a block repeated 4 times at the end: Whisper's compression-ratio check would
    /// reject it; stopping there also bounds the cost of out-of-language audio).
    case skipped(SkipReason, noSpeechProbability: Float?)

    public enum SkipReason: String, Sendable {
        case energy, noSpeech = "no_speech", lowConfidence = "low_confidence", repetition
    }
}

public struct Transcript: Sendable, Equatable {
    /// The decoded text, trimmed (may be empty when the model ends at once).
    public var text: String
    /// ISO 639-1 code as Whisper names it (`en`, `zh`, …); always `en` for English-only checkpoints.
    public var language: String
    public var noSpeechProbability: Float
    /// Mean log-probability of the generated tokens (Whisper's `avg_logprob`).
    public var averageLogProbability: Float
    public var tokens: [Int32]
    /// Seconds of audio the transcript covers (the clip, cut at `maxSeconds`).
    public var seconds: Double
}

public struct TranscriptionOptions: Sendable, Equatable {
    /// Audio beyond this many seconds is not transcribed (at most Whisper's 30 s window).
    public var maxSeconds: Double = 30
    /// Clips whose loudest log-mel value (log10 of mel power) is below this are skipped
    /// before any model runs. −5 is about 60 dB under normal speech.
    public var energyFloor: Float = -5
    /// Whisper's `no_speech_threshold`: above it the clip is skipped after one step.
    public var noSpeechThreshold: Float = 0.6
    /// Whisper's `logprob_threshold`: a transcript whose tokens average less is dropped.
    public var logProbabilityThreshold: Float = -1
    /// Generated tokens at most (Whisper's `sample_len`: half the decoder's context)...
    public var maxTokens = 224
    /// ...and at most this many per second of audio, plus 16 (fast speech in Chinese is
    /// about 6 characters, ≤ 12 tokens, a second).
    public var maxTokensPerSecond = 15.0

    public init(maxSeconds: Double = 30, energyFloor: Float = -5, noSpeechThreshold: Float = 0.6, maxTokens: Int = 224) {
        self.maxSeconds = maxSeconds
        self.energyFloor = energyFloor
        self.noSpeechThreshold = noSpeechThreshold
        self.maxTokens = maxTokens
    }
}

/// The audio tower's encoder plus its checkpoint's decoder and vocabulary. Weights are
/// shared and immutable; `transcribe` may be called from several threads.
public final class SpeechTranscriber: Sendable {
    public let encoder: WhisperEncoder
    public let decoder: WhisperDecoder
    public let vocabulary: WhisperVocabulary
    public let frontEnd: AudioFrontEnd
    public let options: TranscriptionOptions
    /// Whisper's window: the encoder was trained on exactly this many mel frames.
    public let windowFrames: Int
    let arenas: ArenaPool
    /// Tokens never generated: the package's list, the task/control tokens, and every
    /// special token but `<|endoftext|>` (timestamps are off, the language is fixed).
    let suppressed: [Int32]

    /// Loads `towers.audio.asr` of `modelDirectory`; `encoder` is the engine's audio tower.
    public init(modelDirectory: URL, manifest: ModelManifest, encoder: WhisperEncoder, options: TranscriptionOptions = TranscriptionOptions()) throws {
        guard let audio = manifest.towers.audio else { throw ModelError.invalidInput("the model has no audio tower") }
        guard let asr = audio.asr else {
            throw ModelError.invalidConfig(key: "towers.audio.asr", reason: "missing: the model directory predates speech transcription (re-run Ops/model-fetch)")
        }
        guard options.maxSeconds > 0, options.maxSeconds <= 30 else {
            throw ModelError.invalidConfig(key: "asr.max_seconds", reason: "must be in (0, 30], got \(options.maxSeconds)")
        }
        self.encoder = encoder
        self.options = options
        frontEnd = audio.preprocessing
        windowFrames = 2 * encoder.config.maxSourcePositions
        decoder = try WhisperDecoder(weights: try SafeTensorsFile(path: modelDirectory.appendingPathComponent(asr.weights).path), config: asr.config)
        vocabulary = try WhisperVocabulary(file: modelDirectory.appendingPathComponent(asr.vocabulary))
        guard vocabulary.tokens.count == asr.config.vocabSize else {
            throw ModelError.invalidConfig(key: "towers.audio.asr.vocabulary", reason: "\(vocabulary.tokens.count) tokens, the decoder has \(asr.config.vocabSize)")
        }
        let v = vocabulary
        suppressed = Array(Set(asr.config.suppressTokens
            + [v.transcribe, v.translate, v.startOfTranscript, v.startOfPrevious, v.startOfLM, v.noSpeech]
            + (Int(v.firstSpecial) + 1..<asr.config.vocabSize).map(Int32.init))).sorted()
        arenas = ArenaPool(initialFloats: encoder.scratchFloats(frames: [windowFrames]))
    }

    /// Transcribes the first `options.maxSeconds` of `mel` (the worker's decoded audio).
    public func transcribe(_ mel: LogMel, threads: Int = 1) throws -> TranscriptionOutcome {
        let frames = min(mel.frames, Int(options.maxSeconds * Double(frontEnd.sampleRate) / Double(frontEnd.hopLength)), windowFrames)
        guard mel.bins == encoder.config.numMelBins, frames >= 1, mel.values.count == mel.bins * mel.frames else {
            throw ModelError.invalidInput("log-mel must be \(encoder.config.numMelBins)×T with T ≥ 1, got \(mel.bins)×\(mel.frames)")
        }
        // The mel is (log10(max(p, 1e-10)) clamped at peak − 8, + 4) / 4: the peak in log10 units is 4·max − 4.
        let peak = mel.values.max()! * 4 - 4
        guard peak >= options.energyFloor else { return .skipped(.energy, noSpeechProbability: nil) }

        let states = try arenas.withArena { try encoder.hiddenStates([Self.padded(mel, frames: frames, to: windowFrames)], arena: $0, threads: threads) }
        let state = try decoder.start(encoderStates: states, threads: threads)
        let v = vocabulary
        try decoder.step(v.startOfTranscript, state: state, threads: threads)
        let first = state.logitsArray
        let noSpeech = Self.softmax(first)[Int(v.noSpeech)]
        guard noSpeech <= options.noSpeechThreshold else { return .skipped(.noSpeech, noSpeechProbability: noSpeech) }

        var language = "en"
        var prompt: [Int32] = []
        if v.multilingual, let best = v.languages.max(by: { first[Int($0.token)] < first[Int($1.token)] }) {
            language = best.code
            prompt = [best.token, v.transcribe]
        }
        prompt.append(v.noTimestamps)
        for (i, token) in prompt.enumerated() {
            try decoder.step(token, state: state, logits: i == prompt.count - 1, threads: threads)
        }

        var tokens: [Int32] = []
        var logProbability: Double = 0
        let limit = min(options.maxTokens, decoder.config.maxTargetPositions - state.length,
                        16 + Int(options.maxTokensPerSecond * frontEnd.seconds(frames: frames)))
        while tokens.count < limit {
            let logits = state.logits
            for id in suppressed { logits[Int(id)] = -.infinity }
            if tokens.isEmpty { for id in decoder.config.beginSuppressTokens { logits[Int(id)] = -.infinity } }
            var best = 0
            var bestValue = -Float.infinity
            for i in 0..<decoder.config.vocabSize where logits[i] > bestValue {
                best = i
                bestValue = logits[i]
            }
            logProbability += Double(bestValue - Self.logSumExp(logits, count: decoder.config.vocabSize))
            if best == Int(v.endOfText) { break }
            tokens.append(Int32(best))
            if Self.endsInLoop(tokens) { return .skipped(.repetition, noSpeechProbability: noSpeech) }
            if tokens.count == limit { break }
            try decoder.step(Int32(best), state: state, threads: threads)
        }
        let average = Float(logProbability / Double(tokens.count + 1))
        guard average >= options.logProbabilityThreshold else { return .skipped(.lowConfidence, noSpeechProbability: noSpeech) }
        let text = v.decode(tokens).trimmingCharacters(in: .whitespacesAndNewlines)
        return .transcript(Transcript(
            text: text, language: language, noSpeechProbability: noSpeech, averageLogProbability: average, tokens: tokens,
            seconds: frontEnd.seconds(frames: frames)))
    }

    /// The first `frames` frames of `mel` padded to `window` frames with what Whisper's
    /// zero-padded audio gives there: log10(1e-10) = −10 clamped at peak − 8, i.e.
    /// max(−1.5, max − 2) after scaling (the peak is the clip's: padding is silence).
    static func padded(_ mel: LogMel, frames: Int, to window: Int) -> LogMel {
        var peak = -Float.infinity
        for bin in 0..<mel.bins { for f in 0..<frames { peak = max(peak, mel[bin, f]) } }
        let fill = max(-1.5, peak - 2)
        var values = [Float](repeating: fill, count: mel.bins * window)
        for bin in 0..<mel.bins { for f in 0..<frames { values[bin * window + f] = mel[bin, f] } }
        return LogMel(bins: mel.bins, frames: window, values: values)
    }

    /// True when the last 4·p tokens are one block of p tokens repeated 4 times (p ≤ 16).
    static func endsInLoop(_ tokens: [Int32]) -> Bool {
        for period in 1...16 where 4 * period <= tokens.count {
            let end = tokens.count
            if (1..<4).allSatisfy({ k in tokens[(end - period)..<end].elementsEqual(tokens[(end - (k + 1) * period)..<(end - k * period)]) }) {
                return true
            }
        }
        return false
    }

    static func logSumExp(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var peak = -Float.infinity
        for i in 0..<count { peak = max(peak, x[i]) }
        var sum: Double = 0
        for i in 0..<count where x[i] > -.infinity { sum += Foundation.exp(Double(x[i] - peak)) }
        return peak + Float(Foundation.log(sum))
    }

    static func softmax(_ x: [Float]) -> [Float] {
        let peak = x.max() ?? 0
        let e = x.map { Foundation.exp(Double($0 - peak)) }
        let total = e.reduce(0, +)
        return e.map { Float($0 / total) }
    }
}
