import ArgumentParser
import EmberModel
import Foundation

/// `ember bench blas`: OpenBLAS sgemm throughput on the shapes the model towers use,
/// the peak the engine benchmark compares its GEMM time against.
struct BenchBLAS: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "blas", abstract: "sgemm GFLOP/s through Ember's gemm wrapper.")

    @Option(help: "OpenBLAS threads.") var threads: Int = 1
    @Option(help: "Seconds to spend on each shape.") var seconds: Double = 1

    func run() throws {
        BLASThreads.count = threads
        print("OpenBLAS \(BLASThreads.coreName), \(threads) thread(s)")
        // (m, n, k): token batch × width × width, MLP up-projection, and a square reference.
        for (m, n, k) in [(200, 768, 768), (200, 3072, 768), (512, 384, 384), (512, 1536, 384), (1024, 1024, 1024)] {
            let gflops = measure(m: m, n: n, k: k)
            print(String(format: "sgemm %5d x %5d x %5d  %7.1f GFLOP/s", m, n, k, gflops))
        }
    }

    private func measure(m: Int, n: Int, k: Int) -> Double {
        let a = [Float](repeating: 0.5, count: m * k)
        let b = [Float](repeating: 0.25, count: k * n)
        var c = [Float](repeating: 0, count: m * n)
        gemm(m: m, n: n, k: k, a: a, b: b, c: &c)  // warm-up: thread pool, page faults
        var calls = 0
        let start = DispatchTime.now().uptimeNanoseconds
        var elapsed: UInt64 = 0
        repeat {
            gemm(m: m, n: n, k: k, a: a, b: b, c: &c)
            calls += 1
            elapsed = DispatchTime.now().uptimeNanoseconds - start
        } while Double(elapsed) < seconds * 1e9
        return 2.0 * Double(m * n * k) * Double(calls) / Double(elapsed)
    }
}
