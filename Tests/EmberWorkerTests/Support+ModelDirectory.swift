import Foundation

extension URL {
    /// The omni-small directory Ops/test fetched: `$EMBER_MODEL_DIR`, else the default cache
    /// (tests may read the environment; the libraries take the directory as a parameter).
    static var defaultModelDirectory: URL {
        URL(fileURLWithPath: ProcessInfo.processInfo.environment["EMBER_MODEL_DIR"] ?? NSHomeDirectory() + "/.cache/ember/models/omni-small")
    }
}
