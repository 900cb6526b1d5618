import ArgumentParser
import EmberModel
import Foundation

/// `ember bench fusion`: the VLM-fusion stack (the Qwen2 decoder over one item's fused
/// sequence, final norm, tanh-mean pooling) at a 0.5B-class (Qwen2-0.5B's dims) and a
/// 2B-class (Qwen2-VL-2B's language model) configuration with random weights, against
/// transformers' Qwen2Model with the same shapes, sequence and threads, alternating round by
/// round so both see the same machine load. Reports items/s, tokens/s, the ratio and peak RSS.
struct BenchFusion: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fusion", abstract: "VLM-fusion decoder throughput (0.5B- and 2B-class, random weights) versus transformers.")

    @Option(help: "Threads per item for Ember (OpenBLAS at 1), torch threads for the reference.") var threads: Int = 2
    @Option(help: "Configurations: 0.5b, 2b or both.") var config: String = "both"
    @Option(help: "Seconds per measurement.") var seconds: Double = 3
    @Option(help: "Rounds; each measures Ember, then torch.") var rounds: Int = 3
    @Option(help: "Frames per item (perceiver tokens each, plus vision start/end).") var frames: Int = 8
    @Option(help: "Perceiver queries per frame.") var queries: Int = 16
    @Option(help: "Text tokens per item.") var textTokens: Int = 128
    @Flag(help: "Causal attention (GME) instead of bidirectional (SAIL).") var causal = false
    @Flag(help: "Decoder linear layers in bf16 (AVX512-BF16); torch under bf16 autocast.") var bf16 = false
    @Option(help: "Python with torch (default $EMBER_VENV/bin/python or ~/.cache/ember/venv/bin/python).") var python: String?
    @Option(help: "The PyTorch side.") var reference: String = "Ops/reference/qwen2vl_bench.py"
    @Flag(help: "Measure Ember only.") var noTorch = false

    static let configurations: [(String, Qwen2DecoderConfig)] = [
        ("0.5B-class (Qwen2-0.5B: 896 × 24 layers, 14/2 heads, 4864)",
         Qwen2DecoderConfig(vocabSize: 151_936, hiddenSize: 896, intermediateSize: 4864, numHiddenLayers: 24, numAttentionHeads: 14,
                            numKeyValueHeads: 2)),
        ("2B-class (Qwen2-VL-2B: 1536 × 28 layers, 12/2 heads, 8960)",
         Qwen2DecoderConfig(vocabSize: 151_936, hiddenSize: 1536, intermediateSize: 8960, numHiddenLayers: 28, numAttentionHeads: 12,
                            numKeyValueHeads: 2)),
    ]

    func run() throws {
        BLASThreads.count = 1
        // The item: 1 audio token, frames × (queries + vision start/end), text, and the template's 27 tokens.
        let tokens = 27 + 1 + frames * (queries + 2) + textTokens
        let chosen = Self.configurations.enumerated().filter { config == "both" || (config == "0.5b" && $0.offset == 0) || (config == "2b" && $0.offset == 1) }
        guard !chosen.isEmpty else { throw ValidationError("--config must be 0.5b, 2b or both") }
        let load = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
        print("VLM-fusion stack, one item per call: \(tokens) tokens (1 audio, \(frames) frames × \(queries) + 2, \(textTokens) text, 27 template), "
              + "\(causal ? "causal" : "bidirectional"), \(bf16 ? "bf16" : "fp32"), \(threads) thread(s); load average \(load) at start")
        for (_, (name, decoderConfig)) in chosen {
            try measure(name: name, config: decoderConfig, tokens: tokens)
        }
    }

    private func measure(name: String, config: Qwen2DecoderConfig, tokens: Int) throws {
        let decoder = try Qwen2Decoder(randomWeights: config, precision: bf16 ? .bf16 : .fp32)
        let arena = ScratchArena(floats: decoder.scratchFloats(tokens: tokens, longest: tokens, threads: threads))
        let d = config.hiddenSize
        let input = (0..<(tokens * d)).map { Float(($0 * 7919) % 1000) / 50_000 - 0.01 }
        var x = input
        let positions = [RopePositions(segments: [.sequential(count: tokens)])]
        func item() throws {
            x.replaceSubrange(0..<x.count, with: input)
            try x.withUnsafeMutableBufferPointer {
                try decoder.forward($0.baseAddress!, lengths: [tokens], positions: positions, mask: causal ? .causal : .bidirectional,
                                    arena: arena, threads: threads)
            }
        }
        try item()
        let emberRSS = peakRSSMegabytes()
        var peer: FusionTorchPeer?
        if !noTorch {
            let json = "{\"vocab_size\": \(config.vocabSize), \"hidden_size\": \(d), \"intermediate_size\": \(config.intermediateSize), "
                + "\"num_hidden_layers\": \(config.numHiddenLayers), \"num_attention_heads\": \(config.numAttentionHeads), "
                + "\"num_key_value_heads\": \(config.numKeyValueHeads), \"rope_theta\": \(config.ropeTheta)}"
            peer = try FusionTorchPeer(python: python ?? defaultPython, arguments: [reference, json, "\(tokens)", "\(threads)", "\(seconds)"]
                + (causal ? [] : ["--bidirectional"]) + (bf16 ? ["--bf16"] : []))
        }
        defer { peer?.close() }
        var ember: [Double] = [], torch: [Double] = []
        for _ in 0..<rounds {
            var times: [Double] = []
            let start = Date()
            while times.isEmpty || Date().timeIntervalSince(start) < seconds {
                let t = Date()
                try item()
                times.append(Date().timeIntervalSince(t))
            }
            ember.append(median(times))
            if let peer { torch.append(try peer.measure()) }
        }
        let e = median(ember)
        print("\(name): Ember \(String(format: "%.1f", 1000 * e)) ms per item = \(String(format: "%.2f", 1 / e)) items/s, "
              + "\(String(format: "%.0f", Double(tokens) / e)) tokens/s (rounds \(ember.map { String(format: "%.0f", 1000 * $0) }.joined(separator: "/")) ms); "
              + "peak RSS \(String(format: "%.0f", emberRSS)) MB")
        if let peer, !torch.isEmpty {
            let t = median(torch)
            let ratios = zip(ember, torch).map { $1 / $0 }
            print("  transformers \(String(format: "%.1f", 1000 * t)) ms per item = \(String(format: "%.2f", 1 / t)) items/s, "
                  + "\(String(format: "%.0f", Double(tokens) / t)) tokens/s; peak RSS \(String(format: "%.0f", peer.rssMegabytes)) MB; "
                  + "Ember / transformers \(String(format: "%.2f", t / e))× (per round \(ratios.map { String(format: "%.2f", $0) }.joined(separator: ", ")))")
        }
    }

    private var defaultPython: String {
        (ProcessInfo.processInfo.environment["EMBER_VENV"]
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/ember/venv").path) + "/bin/python"
    }
}

/// transformers' side, kept loaded between rounds: one line in, `{"seconds": s}` out.
private final class FusionTorchPeer {
    let process = Process()
    let input = Pipe(), output = Pipe()
    private var buffer = Data()
    private(set) var rssMegabytes = 0.0

    init(python: String, arguments: [String]) throws {
        guard FileManager.default.isExecutableFile(atPath: python) else { throw ValidationError("no \(python) (Ops/model-python-env makes it)") }
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = arguments
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        guard let ready = line(), ready["ready"] as? Bool == true else {
            close()
            throw ValidationError("the PyTorch side did not start")
        }
        rssMegabytes = ready["rss_mb"] as? Double ?? 0
    }

    func measure() throws -> Double {
        input.fileHandleForWriting.write(Data("run\n".utf8))
        guard let answer = line(), let seconds = answer["seconds"] as? Double else { throw ValidationError("no answer from the PyTorch side") }
        rssMegabytes = answer["rss_mb"] as? Double ?? rssMegabytes
        return seconds
    }

    func close() {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }

    private func line() -> [String: Any]? {
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let text = buffer[buffer.startIndex..<newline]
                buffer = Data(buffer[(newline + 1)...])
                if let object = try? JSONSerialization.jsonObject(with: text) as? [String: Any] { return object }
                continue
            }
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { return nil }
            buffer.append(chunk)
        }
    }
}
