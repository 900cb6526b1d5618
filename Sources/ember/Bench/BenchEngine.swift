import ArgumentParser
import EmberModel
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `ember bench engine`: per-tower and whole-item throughput of the embedding engine
/// against the PyTorch reference on the same inputs and thread count, in one run; GEMM
/// GFLOP/s of the text and audio towers against the sgemm peak; peak RSS.
struct BenchEngine: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine", abstract: "Embedding engine throughput versus PyTorch on the same inputs.")

    @Option(help: "OpenBLAS threads for Ember, torch threads for the reference.") var threads: Int = 1
    @Option(help: "Seconds to spend on each measurement.") var seconds: Double = 3
    @Option(help: "Model directory (default $EMBER_MODEL_DIR or ~/.cache/ember/models/omni-small).") var model: String?
    @Option(help: "Python with torch (default $EMBER_VENV/bin/python or ~/.cache/ember/venv/bin/python).") var python: String?
    @Option(help: "The PyTorch side of the benchmark.") var reference: String = "Ops/reference/bench_torch.py"
    @Flag(help: "Measure Ember only.") var noTorch = false

    // Workloads: a micro-batch per tower, and a whole-item micro-batch.
    static let sentences = 32, frames = 8, clips = 2, clipFrames = 1000, items = 2

    func run() throws {
        let directory = URL(fileURLWithPath: model ?? ModelDirectory.resolved())
        BLASThreads.count = threads
        let engine = try EmbeddingEngine(modelDirectory: directory)
        let loadedRSS = peakRSSMegabytes()
        guard let text = engine.text, let tokenizer = engine.tokenizer, let vision = engine.vision, let audio = engine.audio else {
            throw ValidationError("the benchmark needs a model with text, vision and audio towers")
        }
        let size = engine.manifest.towers.vision!.preprocessing.size

        // Deterministic inputs, written for the torch side.
        let words = ["video", "music", "dance", "cooking", "street", "food", "travel", "city", "night", "cat", "dog", "funny",
                     "tutorial", "makeup", "football", "goal", "highlights", "recipe", "noodles", "beach", "sunset", "guitar",
                     "cover", "song", "challenge", "friends", "family", "trip", "mountain", "snow"]
        var state: UInt64 = 42
        func next() -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int(state >> 33)
        }
        let sentences = (0..<Self.sentences).map { _ in (0..<(8 + next() % 40)).map { _ in words[next() % words.count] }.joined(separator: " ") }
        let sequences = sentences.map(tokenizer.encode)
        let frames = (0..<(Self.frames * 3 * size * size)).map { _ in Float(next() % 2000) / 1000 - 1 }
        let clips = (0..<Self.clips).map { _ in
            LogMel(bins: 80, frames: Self.clipFrames, values: (0..<(80 * Self.clipFrames)).map { _ in Float(next() % 2000) / 1000 - 1 })
        }
        let perItemFrames = Self.frames / Self.items
        let items = (0..<Self.items).map { i in
            let span = perItemFrames * 3 * size * size
            let batch = FrameBatch(size: size, count: perItemFrames, values: Array(frames[(i * span)..<((i + 1) * span)]))
            return ItemInput(text: sentences[i], frames: batch, logMel: clips[i])
        }
        let tokens = sequences.map(\.count).reduce(0, +)

        print("model \(engine.modelID), \(threads) thread(s), OpenBLAS \(BLASThreads.coreName); \(seconds) s per measurement")
        print("machine is shared (2 cores, other jobs may run): compare the ratios, not absolute times")
        let peak = sgemmPeak()
        let arena = ScratchArena()  // one worker's scratch, reused across passes as in the engine
        var clock = DispatchTime.now().uptimeNanoseconds
        GEMMProfile.shared.start()
        let textTime = try timed { _ = try text.embed(sequences, arena: arena) }
        let textGEMM = GEMMProfile.shared.stop()
        let textWall = Double(DispatchTime.now().uptimeNanoseconds - clock) / 1e9
        let visionTime = try timed { _ = try vision.features(FrameBatch(size: size, count: Self.frames, values: frames), arena: arena) }
        clock = DispatchTime.now().uptimeNanoseconds
        GEMMProfile.shared.start()
        let audioTime = try timed { _ = try audio.pooled(clips, arena: arena) }
        let audioGEMM = GEMMProfile.shared.stop()
        let audioWall = Double(DispatchTime.now().uptimeNanoseconds - clock) / 1e9
        let itemTime = try timed { _ = try engine.embed(items) }
        let rss = peakRSSMegabytes()

        var torch: [String: Double] = [:]
        if !noTorch {
            torch = (try? runTorch(sequences: sequences, frames: frames, size: size, clips: clips)) ?? [:]
            if torch.isEmpty { print("(PyTorch reference unavailable: run Ops/model-python-env, or pass --no-torch)") }
        }
        let rows: [(String, String, Double, String)] = [
            ("text", "\(Self.sentences) sentences, \(tokens) tokens", textTime, "text"),
            ("vision", "\(Self.frames) frames \(size)×\(size)", visionTime, "vision"),
            ("audio", "\(Self.clips) clips × \(Self.clipFrames / 100) s", audioTime, "audio"),
            ("item", "\(Self.items) items: text + \(perItemFrames) frames + \(Self.clipFrames / 100) s", itemTime, "item"),
        ]
        print("")
        print("tower   batch                                   ember ms   torch ms   ember speed vs torch")
        for (name, batch, ours, key) in rows {
            let reference = torch[key]
            let pad = { (s: String, n: Int) in s.padding(toLength: n, withPad: " ", startingAt: 0) }
            let torchText = reference.map { String(format: "%9.1f", $0 * 1000) } ?? "        -"
            let ratio = reference.map { String(format: "%.2f×", $0 / ours) } ?? "-"
            print("\(pad(name, 8))\(pad(batch, 38))\(String(format: "%9.1f", ours * 1000))  \(torchText)   \(ratio)")
        }
        print("")
        for (name, profile, wall) in [("text", textGEMM, textWall), ("audio", audioGEMM, audioWall)] {
            let rate = profile.flops / profile.seconds / 1e9
            print(String(format: "GEMM %@: %.1f GFLOP/s over %d calls = %.0f%% of the sgemm peak %.1f GFLOP/s; GEMM is %.0f%% of the tower's time",
                         name, rate, profile.calls, 100 * rate / peak, peak, 100 * profile.seconds / wall))
        }
        print(String(format: "peak RSS: %.0f MB with the model loaded, %.0f MB after the run (bench scratch arena %.0f MB)",
                     loadedRSS, rss, arena.megabytes))
    }

    /// Seconds per call, after one warm-up call, over at least `seconds`.
    private func timed(_ body: () throws -> Void) rethrows -> Double {
        try body()
        var runs = 0
        let start = DispatchTime.now().uptimeNanoseconds
        var elapsed: Double = 0
        repeat {
            try body()
            runs += 1
            elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        } while elapsed < seconds
        return elapsed / Double(runs)
    }

    /// sgemm GFLOP/s on the text tower's feed-forward shape (1024 tokens × 1536 × 384).
    private func sgemmPeak() -> Double {
        let (m, n, k) = (1024, 1536, 384)
        let a = [Float](repeating: 0.5, count: m * k), b = [Float](repeating: 0.25, count: k * n)
        var c = [Float](repeating: 0, count: m * n)
        let time = timed { gemm(.none, .transposed, m: m, n: n, k: k, a: a, b: b, c: &c) }
        return 2 * Double(m * n * k) / time / 1e9
    }

    private func runTorch(sequences: [[Int32]], frames: [Float], size: Int, clips: [LogMel]) throws -> [String: Double] {
        let python = python ?? {
            let venv = ProcessInfo.processInfo.environment["EMBER_VENV"]
                ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/ember/venv").path
            return venv + "/bin/python"
        }()
        guard FileManager.default.isExecutableFile(atPath: python), FileManager.default.fileExists(atPath: reference) else { return [:] }
        let inputs = FileManager.default.temporaryDirectory.appendingPathComponent("ember-bench-\(getpid()).safetensors")
        defer { try? FileManager.default.removeItem(at: inputs) }
        try writeSafeTensors([
            ("text.ids", [sequences.map(\.count).reduce(0, +)], sequences.flatMap { $0.map(Float.init) }),
            ("text.lengths", [sequences.count], sequences.map { Float($0.count) }),
            ("vision.frames", [Self.frames, 3, size, size], frames),
            ("audio.mels", [clips.count, 80, Self.clipFrames], clips.flatMap(\.values)),
            ("item.count", [1], [Float(Self.items)]),
        ], to: inputs)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [reference, inputs.path, "\(threads)", "\(seconds)"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0, let line = String(decoding: output, as: UTF8.self).split(separator: "\n").last,
            let json = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        else { return [:] }
        var result: [String: Double] = [:]
        for key in ["text", "vision", "audio", "item"] { result[key] = json[key] as? Double }
        return result
    }
}

/// Peak resident set size of this process so far, in MB (Linux ru_maxrss is in KB).
func peakRSSMegabytes() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}
