import EmberKafka
import EmberMedia
import EmberModel

/// Ember's version and the versions of the C libraries it runs on, as linked at run
/// time (they are what matters when a bug report arrives).
public enum BuildInfo {
    public static let version = "0.1.0-dev"

    /// One line per component: `ember`, librdkafka, each FFmpeg library, OpenBLAS.
    public static var components: [(name: String, version: String)] {
        var components: [(String, String)] = [("ember", version), ("librdkafka", Librdkafka.version)]
        components += FFmpegLibraries.versions.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        components.append(("OpenBLAS", "\(BLASThreads.configuration) (core \(BLASThreads.coreName))"))
        return components
    }

    public static var summary: String {
        components.map { "\($0.name) \($0.version)" }.joined(separator: "\n")
    }
}
