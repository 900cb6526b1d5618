import ArgumentParser
import EmberModel
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `ember bench engine`: per-tower and whole-item throughput of the embedding engine
/// against the PyTorch reference on the same inputs and thread count, in one run, the two
/// alternating workload by workload so both see the same machine load; GEMM
/// GFLOP/s of the text and audio towers against the sgemm peak; peak RSS.
struct BenchEngine: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine", abstract: "Embedding engine throughput versus PyTorch on the same inputs.")

    @Option(help: "Threads per engine call for Ember (EmbeddingEngine threads, OpenBLAS at 1), torch threads for the reference.")
    var threads: Int = 1
    @Flag(help: "Give the threads to OpenBLAS instead (engine threads 1, BLAS threads N): the engine before issue 11, for comparison.")
    var blasThreads = false
    @Flag(help: "Ember in bf16 (AVX512-BF16: text and audio linear layers, vision 1×1 convolutions), torch's text and audio under bf16 autocast (its vision is faster in fp32); prints each tower's cosine to fp32.") var bf16 = false
    @Option(help: "Seconds to spend on each measurement.") var seconds: Double = 1.5
    @Option(help: "Rounds; each measures every workload on Ember, then on torch.") var rounds: Int = 3
    @Option(help: "Model directory (default $EMBER_MODEL_DIR or ~/.cache/ember/models/omni-small).") var model: String?
    @Option(help: "Python with torch (default $EMBER_VENV/bin/python or ~/.cache/ember/venv/bin/python).") var python: String?
    @Option(help: "The PyTorch side of the benchmark.") var reference: String = "Ops/reference/bench_torch.py"
    @Flag(help: "Measure Ember only.") var noTorch = false
    @Option(help: "Comma-separated workloads to measure (text, vision, audio, item); default all.") var only: String?

    // Workloads: a micro-batch per tower, and a whole-item micro-batch.
    static let sentences = 32, frames = 8, clips = 2, clipFrames = 1000, items = 2

    func run() throws {
        let directory = URL(fileURLWithPath: model ?? ModelDirectory.resolved())
        // Engine threads × OpenBLAS threads = `threads`, never more.
        let engineThreads = blasThreads ? 1 : threads
        BLASThreads.count = blasThreads ? threads : 1
        let engine = try EmbeddingEngine(modelDirectory: directory, threads: engineThreads, precision: bf16 ? .bf16 : .fp32)
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

        print("model \(engine.modelID), \(engine.precision.rawValue), \(threads) thread(s): engine \(engineThreads) × OpenBLAS \(BLASThreads.count) (\(BLASThreads.coreName)); "
              + "\(rounds) rounds of \(seconds) s per measurement")
        print("machine is shared (2 cores, other jobs may run): Ember and torch alternate within each round; compare the ratios")
        // One-thread GEMM peaks: the profile below reports a per-thread rate (FLOPs over thread time).
        let fp32Peak = sgemmPeak()
        let bf16Peak = engine.precision == .bf16 ? bf16LinearPeak() : nil
        let arena = ScratchArena()  // one worker's scratch, reused across passes as in the engine
        var torch: TorchPeer?
        if !noTorch {
            torch = try? TorchPeer(python: pythonPath, script: reference, threads: threads, seconds: seconds, bf16: engine.precision == .bf16,
                                   sequences: sequences, frames: frames, size: size, clips: clips, items: Self.items)
            if torch == nil { print("(PyTorch reference unavailable: run Ops/model-python-env, or pass --no-torch)") }
        }
        let allWorkloads: [(key: String, batch: String, body: () throws -> Void)] = [
            ("text", "\(Self.sentences) sentences, \(tokens) tokens", { _ = try text.embed(sequences, arena: arena, threads: engineThreads) }),
            ("vision", "\(Self.frames) frames \(size)×\(size)",
             { _ = try vision.features(FrameBatch(size: size, count: Self.frames, values: frames), arena: arena, threads: engineThreads) }),
            ("audio", "\(Self.clips) clips × \(Self.clipFrames / 100) s", { _ = try audio.pooled(clips, arena: arena, threads: engineThreads) }),
            ("item", "\(Self.items) items: text + \(perItemFrames) frames + \(Self.clipFrames / 100) s", { _ = try engine.embed(items) }),
        ]
        let selected = only.map { Set($0.split(separator: ",").map(String.init)) }
        let workloads = allWorkloads.filter { selected?.contains($0.key) ?? true }
        guard !workloads.isEmpty else { throw ValidationError("--only names none of text, vision, audio, item") }
        // Rounds: each workload on Ember then on torch, back to back, so both see the same load.
        var ours: [String: [Double]] = [:], theirs: [String: [Double]] = [:]
        var oursCPU: [String: [Double]] = [:], theirsCPU: [String: [Double]] = [:]
        var gemm: [String: (threadSeconds: Double, flops: Double, calls: Int, wall: Double)] = [:]
        for _ in 0..<rounds {
            for workload in workloads {
                let clock = DispatchTime.now().uptimeNanoseconds
                GEMMProfile.shared.start()
                let (wallSeconds, cpuSeconds) = try timedWithCPU(workload.body)
                ours[workload.key, default: []].append(wallSeconds)
                oursCPU[workload.key, default: []].append(cpuSeconds)
                let profile = GEMMProfile.shared.stop()
                let wall = Double(DispatchTime.now().uptimeNanoseconds - clock) / 1e9
                let total = gemm[workload.key] ?? (0, 0, 0, 0)
                gemm[workload.key] = (total.threadSeconds + profile.threadSeconds, total.flops + profile.flops, total.calls + profile.calls, total.wall + wall)
                if let torch, let (seconds, cpu) = try? torch.measure(workload.key) {
                    theirs[workload.key, default: []].append(seconds)
                    if let cpu { theirsCPU[workload.key, default: []].append(cpu) }
                }
            }
        }
        torch?.close()
        let rss = peakRSSMegabytes()

        print("")
        print("tower   batch                                   ember ms   torch ms   ember speed vs torch (median of rounds; min–max)")
        let pad = { (s: String, n: Int) in s.padding(toLength: n, withPad: " ", startingAt: 0) }
        for workload in workloads {
            let mine = ours[workload.key] ?? []
            var line = pad(workload.key, 8) + pad(workload.batch, 38) + String(format: "%9.1f", median(mine) * 1000)
            if let reference = theirs[workload.key], reference.count == mine.count {
                let ratios = zip(reference, mine).map { $0 / $1 }
                line += String(format: "  %9.1f   %.2f× (%.2f–%.2f)", median(reference) * 1000, median(ratios), ratios.min()!, ratios.max()!)
            } else {
                line += "          -   -"
            }
            print(line)
        }
        // CPU seconds per call (all threads of each process): under load, wall time measures the
        // scheduler as much as the code; CPU time is the work done (torch's OpenMP threads spin
        // while they wait, which counts against it).
        print("")
        print("tower   ember CPU ms/call   torch CPU ms/call   ratio (medians; CPU time of all threads, robust to load, not a speed figure)")
        for workload in workloads {
            let mine = median(oursCPU[workload.key] ?? [])
            let reference = median(theirsCPU[workload.key] ?? [])
            print(pad(workload.key, 8) + String(format: "%17.1f   %17.1f   %.2f×", mine * 1000, reference * 1000, reference / mine))
        }
        print("")
        // Per thread: a call split over 2 threads and two 1-thread calls side by side (audio's
        // per-clip scheduling) count alike. The share is of the thread time the tower had.
        let (peak, peakName) = bf16Peak.map { ($0, "bf16 linear") } ?? (fp32Peak, "sgemm")
        for name in ["text", "audio"] {
            guard let profile = gemm[name], profile.threadSeconds > 0 else { continue }
            let rate = profile.flops / profile.threadSeconds / 1e9
            print(String(format: "GEMM %@: %.1f GFLOP/s per thread over %d calls = %.0f%% of the one-thread %@ peak %.1f GFLOP/s; "
                         + "GEMM takes %.0f%% of the tower's thread time (wall × %d threads)",
                         name, rate, profile.calls, 100 * rate / peak, peakName, peak, 100 * profile.threadSeconds / (profile.wall * Double(engineThreads)),
                         engineThreads))
        }
        if engine.precision == .bf16 {
            // Accuracy of the bf16 run: each tower's outputs against an fp32 engine on the same inputs.
            let reference = try EmbeddingEngine(modelDirectory: directory, threads: engineThreads)
            func cosine(_ a: [Float], _ b: [Float]) -> Double {
                let dot = zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                let na = a.reduce(0.0) { $0 + Double($1) * Double($1) }, nb = b.reduce(0.0) { $0 + Double($1) * Double($1) }
                return dot / (na * nb).squareRoot()
            }
            let scratch = ScratchArena()
            let pairs: [(String, [[Float]], [[Float]])] = [
                ("text", try text.embed(sequences, arena: scratch, threads: engineThreads),
                 try reference.text!.embed(sequences, arena: scratch, threads: engineThreads)),
                ("vision", try vision.features(FrameBatch(size: size, count: Self.frames, values: frames), arena: scratch, threads: engineThreads)
                    .chunked(vision.featureWidth),
                 try reference.vision!.features(FrameBatch(size: size, count: Self.frames, values: frames), arena: scratch, threads: engineThreads)
                    .chunked(vision.featureWidth)),
                ("audio", try audio.pooled(clips, arena: scratch, threads: engineThreads),
                 try reference.audio!.pooled(clips, arena: scratch, threads: engineThreads)),
                ("item", try engine.embed(items).map(\.vector), try reference.embed(items).map(\.vector)),
            ]
            print(pairs.map { name, ours, fp32 in
                String(format: "%@ %.6f", name, zip(ours, fp32).map { cosine($0, $1) }.min() ?? .nan)
            }.joined(separator: ", "), "(bf16 vs fp32, lowest cosine per tower or frame)")
        }
        print(String(format: "peak RSS: %.0f MB with the model loaded, %.0f MB after the run (bench scratch arena %.0f MB)",
                     loadedRSS, rss, arena.megabytes))
    }

    private var pythonPath: String {
        python ?? {
            let venv = ProcessInfo.processInfo.environment["EMBER_VENV"]
                ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/ember/venv").path
            return venv + "/bin/python"
        }()
    }

    /// Wall seconds and process CPU seconds (user + system, all threads) per call, after one
    /// warm-up call, over at least `atLeast` (default `seconds`) of wall time.
    private func timedWithCPU(atLeast: Double? = nil, _ body: () throws -> Void) rethrows -> (wall: Double, cpu: Double) {
        let seconds = atLeast ?? seconds
        try body()
        var runs = 0
        let start = DispatchTime.now().uptimeNanoseconds, cpuStart = processCPUSeconds()
        var elapsed: Double = 0
        repeat {
            try body()
            runs += 1
            elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        } while elapsed < seconds
        return (elapsed / Double(runs), (processCPUSeconds() - cpuStart) / Double(runs))
    }

    /// The text tower's feed-forward shape (1024 tokens × 1536 × 384), where both peaks are measured.
    private static let peakShape = (rows: 1024, outFeatures: 1536, inFeatures: 384)

    /// bf16 linear-layer GFLOP/s on one thread (rows rounded to bf16 in the call, as the
    /// engine's layers do).
    private func bf16LinearPeak() -> Double {
        let (rows, outFeatures, inFeatures) = Self.peakShape
        let x = [Float](repeating: 0.5, count: rows * inFeatures), w = [Float](repeating: 0.25, count: outFeatures * inFeatures)
        let weight = w.withUnsafeBufferPointer { BF16Weights($0.baseAddress!, outFeatures: outFeatures, inFeatures: inFeatures) }
        var out = [Float](repeating: 0, count: rows * outFeatures)
        var scratch = [Float](repeating: 0, count: bf16ScratchFloats(rows: rows, inFeatures: inFeatures))
        let time = timedWithCPU(atLeast: min(seconds, 1)) {
            linearBF16(x, rows: rows, inFeatures: inFeatures, weight: weight, bias: nil, out: &out, scratch: &scratch)
        }.wall
        return 2 * Double(rows * outFeatures * inFeatures) / time / 1e9
    }

    /// sgemm GFLOP/s on one thread.
    private func sgemmPeak() -> Double {
        let (m, n, k) = Self.peakShape
        let a = [Float](repeating: 0.5, count: m * k), b = [Float](repeating: 0.25, count: k * n)
        var c = [Float](repeating: 0, count: m * n)
        let time = timedWithCPU(atLeast: min(seconds, 1)) { gemm(.none, .transposed, m: m, n: n, k: k, a: a, b: b, c: &c) }.wall
        return 2 * Double(m * n * k) / time / 1e9
    }
}

func median(_ values: [Double]) -> Double {
    guard !values.isEmpty else { return .nan }
    let sorted = values.sorted()
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

/// The PyTorch side, kept running between measurements (`bench_torch.py --serve`): it
/// loads the reference towers once, then answers one workload name per line with the
/// seconds per call as JSON.
private final class TorchPeer {
    let process = Process()
    let input = Pipe(), output = Pipe()
    let inputs: URL
    var buffer = Data()

    init(python: String, script: String, threads: Int, seconds: Double, bf16: Bool,
         sequences: [[Int32]], frames: [Float], size: Int, clips: [LogMel], items: Int) throws {
        guard FileManager.default.isExecutableFile(atPath: python), FileManager.default.fileExists(atPath: script) else {
            throw ValidationError("no \(python) or \(script)")
        }
        inputs = FileManager.default.temporaryDirectory.appendingPathComponent("ember-bench-\(getpid()).safetensors")
        try writeSafeTensors([
            ("text.ids", [sequences.map(\.count).reduce(0, +)], sequences.flatMap { $0.map(Float.init) }),
            ("text.lengths", [sequences.count], sequences.map { Float($0.count) }),
            ("vision.frames", [frames.count / (3 * size * size), 3, size, size], frames),
            ("audio.mels", [clips.count, clips[0].bins, clips[0].frames], clips.flatMap(\.values)),
            ("item.count", [1], [Float(items)]),
        ], to: inputs)
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script, inputs.path, "\(threads)", "\(seconds)", "--serve"] + (bf16 ? ["--bf16"] : [])
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        guard let ready = try readJSON(), ready["ready"] as? Bool == true else {
            close()
            throw ValidationError("the PyTorch side did not start")
        }
    }

    /// Wall seconds per call of workload `key` on torch, and its process CPU seconds per call when reported.
    func measure(_ key: String) throws -> (Double, Double?) {
        input.fileHandleForWriting.write(Data((key + "\n").utf8))
        guard let answer = try readJSON(), let seconds = answer[key] as? Double else { throw ValidationError("no answer for \(key)") }
        return (seconds, answer["cpu"] as? Double)
    }

    func close() {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: inputs)
    }

    /// The next line of stdout that is a JSON object (nil at end of output).
    private func readJSON() throws -> [String: Any]? {
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = buffer[buffer.startIndex..<newline]
                buffer = Data(buffer[(newline + 1)...])
                if let object = try? JSONSerialization.jsonObject(with: line) as? [String: Any] { return object }
                continue
            }
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { return nil }
            buffer.append(chunk)
        }
    }
}

extension Array where Element == Float {
    /// Consecutive rows of `width` values.
    func chunked(_ width: Int) -> [[Float]] { stride(from: 0, to: count, by: width).map { Array(self[$0..<Swift.min($0 + width, count)]) } }
}

/// User + system CPU seconds of this process so far (all threads).
func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    let user = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
    let system = Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
    return user + system
}

/// Peak resident set size of this process so far, in MB (Linux ru_maxrss is in KB).
func peakRSSMegabytes() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}
