import Foundation

/// Where the `ember` tool looks for the model when no setting names one. The rule lives
/// in the executable, not in EmberModel: libraries take the directory as a parameter and
/// read no environment.
enum ModelDirectory {
    /// `$XDG_CACHE_HOME/ember/models/omni-small`, else `~/.cache/ember/models/omni-small`
    /// (where `Ops/model-fetch` writes it).
    static var fallback: URL {
        let environment = ProcessInfo.processInfo.environment
        let cache = environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache")
        return cache.appendingPathComponent("ember/models/omni-small")
    }

    /// For commands that take no configuration file (`ember embed`, `ember bench`):
    /// `$EMBER_MODEL_DIR` when set, else `fallback`. `ember run`/`replay` get the same
    /// variable through the configuration loader (`model.directory`).
    static func resolved() -> String {
        if let path = ProcessInfo.processInfo.environment["EMBER_MODEL_DIR"], !path.isEmpty { return path }
        return fallback.path
    }
}

extension URL {
    /// The configuration's built-in default for `model.directory` (`ModelDirectory.fallback`).
    static var defaultModelDirectory: URL { ModelDirectory.fallback }
}
