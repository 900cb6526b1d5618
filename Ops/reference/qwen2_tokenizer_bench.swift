// Single-thread throughput of Qwen2Tokenizer on the parity corpus, for
// Ops/reference/qwen2_tokenizer_bench (which compiles this with the tokenizer's sources).
import EmberContract
import Foundation

@main
struct Qwen2TokenizerBench {
    static func main() throws {
        let arguments = CommandLine.arguments
        let started = Date()
        let tokenizer = try Qwen2Tokenizer(tokenizerJSON: URL(fileURLWithPath: arguments[1]))
        let loaded = Date().timeIntervalSince(started)
        let corpus = try String(contentsOf: URL(fileURLWithPath: arguments[2]), encoding: .utf8)
            .split(separator: "\n").map { try JSONDecoder().decode(String.self, from: Data($0.utf8)) }
        let seconds = arguments.count > 3 ? Double(arguments[3])! : 3
        for text in corpus { _ = tokenizer.encode(text) }  // warm-up: fills the word cache
        var tokens = 0, passes = 0
        let start = Date()
        while Date().timeIntervalSince(start) < seconds {
            for text in corpus { tokens += tokenizer.encode(text).count }
            passes += 1
        }
        let elapsed = Date().timeIntervalSince(start)
        print(String(format: "Qwen2Tokenizer: %d passes, %d tokens in %.3f s: %.0f tokens/s (load %.2f s)", passes, tokens, elapsed, Double(tokens) / elapsed, loaded))
    }
}
