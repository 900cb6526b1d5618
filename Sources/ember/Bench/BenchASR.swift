import ArgumentParser
import EmberMedia
import EmberModel
import Foundation

/// `ember bench asr`: speech transcription of espeak-ng sentences in several languages by
/// each model directory's Whisper decoder: word error rate per language (character error
/// rate for Chinese and Japanese), the detected language, and the per-item cost of ASR
/// next to the cost of embedding the same item (title + its audio) without it.
struct BenchASR: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "asr", abstract: "Speech transcription: WER per language and per-item cost, per model directory.")

    @Option(name: .customLong("model"), help: "A model directory (repeatable).") var models: [String] = []
    @Option(help: "Threads per call (OpenBLAS at 1), as model.threads in the worker.") var threads: Int = 1
    @Option(help: "auto | fp32 | bf16, as model.precision.") var precision: String = "auto"
    @Option(help: "Languages (espeak-ng voices of the built-in sentences).") var languages: [String] = ["en", "de", "es", "fr", "ru", "zh", "ja"]

    /// Three sentences per language; espeak-ng voice; whether to score characters.
    static let sentences: [String: (voice: String, characters: Bool, texts: [String])] = [
        "en": ("en-us", false, ["Please subscribe to my channel for more cooking videos.",
                                "Today I will show you how to repair a bicycle tire at home.",
                                "The concert last night was the best show of the whole summer."]),
        "de": ("de", false, ["Heute zeige ich euch, wie man ein einfaches Brot backt.",
                             "Das Konzert gestern Abend war das beste des ganzen Sommers.",
                             "Bitte abonniert meinen Kanal für mehr Reisevideos."]),
        "es": ("es", false, ["Hoy os enseño a preparar una paella muy sencilla.",
                             "El concierto de anoche fue el mejor de todo el verano.",
                             "Suscríbete a mi canal para ver más vídeos de viajes."]),
        "fr": ("fr", false, ["Aujourd'hui je vous montre comment réparer un vélo.",
                             "Le concert d'hier soir était le meilleur de tout l'été.",
                             "Abonnez-vous à ma chaîne pour plus de recettes faciles."]),
        "ru": ("ru", false, ["Сегодня я покажу вам, как приготовить простой суп.",
                             "Вчерашний концерт был лучшим за всё лето.",
                             "Подписывайтесь на мой канал, чтобы увидеть больше видео."]),
        "zh": ("cmn", true, ["今天我教大家做一道简单的家常菜。", "昨天晚上的音乐会是整个夏天最好的。", "请订阅我的频道，观看更多旅行视频。"]),
        "ja": ("ja", true, ["きょうは かんたんな りょうりを つくります。", "きのうの コンサートは とても よかったです。", "チャンネルとうろく よろしく おねがいします。"]),
    ]

    func run() throws {
        guard !models.isEmpty else { throw ValidationError("give at least one --model directory") }
        guard let setting = PrecisionSetting(rawValue: precision) else { throw ValidationError("--precision: auto, fp32 or bf16") }
        BLASThreads.count = 1
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ember-bench-asr-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        var clips: [(language: String, text: String, file: String)] = []
        for language in languages {
            guard let entry = Self.sentences[language] else { throw ValidationError("no sentences for language \(language)") }
            for (i, text) in entry.texts.enumerated() {
                let raw = folder.appendingPathComponent("\(language)-\(i)-raw.wav").path, file = folder.appendingPathComponent("\(language)-\(i).wav").path
                try Self.tool(["espeak-ng", "-v", entry.voice, "-s", "150", "-w", raw, text])
                try Self.tool(["ffmpeg", "-v", "error", "-y", "-i", raw, "-ac", "1", "-ar", "16000", file])
                clips.append((language, text, file))
            }
        }
        var media = MediaConfiguration()
        media.uriPolicy = URIPolicy(mediaRoot: folder.path, blockPrivateAddresses: false)
        print("espeak-ng speech, \(clips.count) clips (\(languages.joined(separator: ", "))); \(threads) thread(s); machine shared: compare ratios")
        for model in models {
            let directory = URL(fileURLWithPath: model)
            let engine = try EmbeddingEngine(modelDirectory: directory, threads: threads, precision: try setting.resolved())
            let transcriber = try SpeechTranscriber(modelDirectory: directory, manifest: engine.manifest, encoder: try engine.audio.orThrow("no audio tower"))
            let frontEnd = try MediaFrontEnd(vision: nil, audio: engine.manifest.towers.audio?.preprocessing, media: media)
            print("\n\(engine.modelID) (\(transcriber.vocabulary.multilingual ? "multilingual" : "English-only") decoder)")
            print("| language | clips | WER (CER for zh/ja) | detected language or skip reason | ASR ms (median) | transcript of the first clip |")
            print("|---|---|---|---|---|---|")
            var asrTimes: [Double] = [], embedTimes: [Double] = [], audioSeconds = 0.0
            for language in languages {
                var rates: [Double] = [], detected: [String] = [], first = "", languageTimes: [Double] = []
                for clip in clips where clip.language == language {
                    let mel = try frontEnd.prepare(videoURI: clip.file, coverURI: nil).logMel.orThrow("no audio")
                    let start = DispatchTime.now().uptimeNanoseconds
                    let outcome = try transcriber.transcribe(mel, threads: threads)
                    asrTimes.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
                    languageTimes.append(asrTimes.last!)
                    audioSeconds += Double(mel.frames) / 100
                    let item = ItemInput(text: "A short video #\(language)", logMel: mel)
                    let embedStart = DispatchTime.now().uptimeNanoseconds
                    _ = try engine.embed([item])
                    embedTimes.append(Double(DispatchTime.now().uptimeNanoseconds - embedStart) / 1e9)
                    guard case .transcript(let transcript) = outcome else {
                        rates.append(1)
                        if case .skipped(let reason, _) = outcome { detected.append("skipped:" + reason.rawValue) }
                        continue
                    }
                    let characters = Self.sentences[language]!.characters
                    rates.append(characters ? WordErrorRate.characters(transcript.text, reference: clip.text)
                                            : WordErrorRate.words(transcript.text, reference: clip.text))
                    detected.append(transcript.language)
                    if first.isEmpty { first = transcript.text }
                }
                let mean = rates.reduce(0, +) / Double(max(rates.count, 1))
                print("| \(language) | \(rates.count) | \(String(format: "%.2f", mean)) | \(Dictionary(grouping: detected) { $0 }.map { "\($0.key)×\($0.value.count)" }.sorted().joined(separator: " ")) | \(String(format: "%.0f", median(languageTimes) * 1000)) | \(first.prefix(80)) |")
            }
            let asr = median(asrTimes) * 1000, embed = median(embedTimes) * 1000
            print(String(format: "cost per item (median of %d clips, %.1f s of audio on average): embed (title + audio) %.0f ms, ASR %.0f ms, embed with ASR %.0f ms (%.2f×)",
                         asrTimes.count, audioSeconds / Double(max(asrTimes.count, 1)), embed, asr, embed + asr, (embed + asr) / embed))
        }
        print(String(format: "peak RSS: %.0f MB", peakRSSMegabytes()))
    }

    static func tool(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw ValidationError("\(arguments[0]) failed") }
    }
}

extension Optional {
    fileprivate func orThrow(_ message: String) throws -> Wrapped {
        guard let self else { throw ValidationError(message) }
        return self
    }
}
