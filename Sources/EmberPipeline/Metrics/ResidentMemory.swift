import Foundation

/// Resident set size of this process, from /proc (Linux).
public enum ResidentMemory {
    /// Current RSS in MiB.
    public static func currentMegabytes() -> Int? { statusField("VmRSS:") }

    /// Peak RSS since start in MiB.
    public static func peakMegabytes() -> Int? { statusField("VmHWM:") }

    private static func statusField(_ name: String) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix(name) {
            let kilobytes = line.dropFirst(name.count).split(whereSeparator: \.isWhitespace).first.flatMap { Int($0) }
            return kilobytes.map { $0 / 1024 }
        }
        return nil
    }
}
