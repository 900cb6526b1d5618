import Foundation

extension URL {
    /// The omni-small directory Ops/test fetched: `$EMBER_MODEL_DIR`, else the default cache
    /// (tests may read the environment; the libraries take the directory as a parameter).
    static var defaultModelDirectory: URL {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["EMBER_MODEL_DIR"], !path.isEmpty { return URL(fileURLWithPath: path) }
        // Where Ops/model-fetch writes it: $XDG_CACHE_HOME, else ~/.cache (as the ember tool reads it).
        let cache = environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory() + "/.cache"
        return URL(fileURLWithPath: cache + "/ember/models/omni-small")
    }
}
