import ArgumentParser
import EmberModel
import Foundation

/// `ember bench models`: the per-item cost of two (or more) model directories, e.g.
/// omni-small against omni-base, on the same synthetic items, one item per call as the
/// worker embeds them (batch-invariant lanes). The models alternate workload by workload
/// within each round so they see the same machine load; the table gives medians (of
/// per-round medians of single calls) and each model's ratio to the first.
struct BenchModels: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models", abstract: "Per-item cost of model directories side by side (e.g. omni-small vs omni-base).")

    @Option(name: .customLong("model"), help: "A model directory; give two or more (the first is the baseline).")
    var models: [String] = []
    @Option(help: "Threads per engine call (OpenBLAS at 1), as model.threads in the worker.") var threads: Int = 1
    @Option(help: "Seconds per measurement.") var seconds: Double = 1.5
    @Option(help: "Rounds; each measures every workload on every model.") var rounds: Int = 3

    func run() throws {
        guard models.count >= 2 else { throw ValidationError("give at least two --model directories") }
        BLASThreads.count = 1
        let engines = try models.map { try EmbeddingEngine(modelDirectory: URL(fileURLWithPath: $0), threads: threads) }
        let title = "Grandma's secret recipe for beef noodle soup #cooking #family 奶奶的牛肉面秘方"
        var state: UInt64 = 7
        func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int(state >> 33) % 2000) / 1000 - 1
        }
        // A sample item: its title, 4 keyframes + cover, 10 s of audio (the engine's input shapes).
        func workloads(_ engine: EmbeddingEngine) -> [(String, ItemInput)] {
            let size = engine.manifest.towers.vision?.preprocessing.size ?? 224
            let frames = FrameBatch(size: size, count: 5, values: (0..<(5 * 3 * size * size)).map { _ in next() })
            let mel = LogMel(bins: 80, frames: 1000, values: (0..<80_000).map { _ in next() })
            return [("text (title)", ItemInput(text: title)), ("vision (5 frames)", ItemInput(frames: frames)),
                    ("audio (10 s)", ItemInput(logMel: mel)), ("whole item", ItemInput(text: title, frames: frames, logMel: mel))]
        }
        let inputs = engines.map(workloads)
        print("\(engines.map(\.modelID).joined(separator: " vs ")); one item per call, \(threads) thread(s); \(rounds) rounds of \(seconds) s")
        print("machine is shared (2 cores, other jobs may run): models alternate within each round; compare the ratios")
        var times = [[[Double]]](repeating: [[Double]](repeating: [], count: inputs[0].count), count: engines.count)
        for _ in 0..<rounds {
            for w in inputs[0].indices {
                for (m, engine) in engines.enumerated() {
                    let item = inputs[m][w].1
                    times[m][w].append(try timed { _ = try engine.embed([item]) })
                }
            }
        }
        let header = ["workload"] + engines.map(\.manifest.id) + engines.dropFirst().map { "\($0.manifest.id) / \(engines[0].manifest.id)" }
        print("| " + header.joined(separator: " | ") + " |")
        print("|" + String(repeating: "---|", count: header.count))
        for w in inputs[0].indices {
            let ms = times.map { median($0[w]) * 1000 }
            let cells = [inputs[0][w].0] + ms.map { String(format: "%.1f ms", $0) } + ms.dropFirst().map { String(format: "%.2f×", $0 / ms[0]) }
            print("| " + cells.joined(separator: " | ") + " |")
        }
        print(String(format: "peak RSS with all models loaded: %.0f MB", peakRSSMegabytes()))
    }

    /// The median of single-call durations (after one warm-up call) over `seconds`: on a
    /// shared machine a median per call shrugs off the calls another job preempted.
    private func timed(_ body: () throws -> Void) rethrows -> Double {
        try body()
        var calls: [Double] = []
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(seconds * 1e9)
        while calls.count < 3 || DispatchTime.now().uptimeNanoseconds < deadline {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            calls.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return median(calls)
    }
}
