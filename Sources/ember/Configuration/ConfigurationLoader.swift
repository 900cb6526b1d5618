import Configuration
import EmberModel
import EmberPipeline
import Foundation
import Logging
import SystemPackage
import Yams

/// Reads `WorkerConfiguration` through swift-configuration: flags over `EMBER_…`
/// environment variables over the YAML file over defaults, one `Setting` at a time. A
/// present but malformed or out-of-range value is an error naming its key, never
/// silently replaced by the default; so is a key that is no setting.
enum ConfigurationLoader {
    static func load(
        file: String?, environment: [String: String] = ProcessInfo.processInfo.environment,
        flags: [String: String] = [:]
    ) async throws(ConfigurationError) -> WorkerConfiguration {
        let settings = Setting.all
        try checkFlags(flags, settings)
        try checkEnvironment(environment, settings)
        var environment = environment
        for setting in settings {
            if let alias = setting.alias, environment[setting.environmentVariable] == nil, let value = environment[alias] {
                environment[setting.environmentVariable] = value
            }
        }
        var providers: [any ConfigProvider] = [
            InMemoryProvider(
                name: "flags",
                values: Dictionary(uniqueKeysWithValues: flags.map { (AbsoluteConfigKey(ConfigKey($0.key)), ConfigValue(.string($0.value), isSecret: false)) })),
            EnvironmentVariablesProvider(environmentVariables: environment).prefixKeys(with: "ember"),
        ]
        if let file {
            guard FileManager.default.fileExists(atPath: file) else {
                throw ConfigurationError("configuration file \(file) does not exist")
            }
            do {
                try checkFile(keys: try ConfigurationFile.keys(ofYAMLFile: file), file, settings)
                providers.append(try await FileProvider<YAMLSnapshot>(filePath: FilePath(file)))
            } catch let error as ConfigurationError {
                throw error
            } catch {
                throw ConfigurationError("cannot read configuration file \(file): \(error)")
            }
        }
        let reader = Reader(ConfigReader(providers: providers))

        var c = WorkerConfiguration()
        for setting in settings { try setting.load(&c, reader) }
        if c.pipeline.resumeBelow > c.pipeline.maxInFlight {
            throw ConfigurationError("pipeline.resume_below must be at most pipeline.max_in_flight (\(c.pipeline.maxInFlight)), got \(c.pipeline.resumeBelow)")
        }
        if c.pipeline.maxRetryBackoffSeconds < c.pipeline.retryBackoffSeconds {
            throw ConfigurationError("pipeline.max_retry_backoff_ms must be at least pipeline.retry_backoff_ms")
        }
        if c.kafka.inputTopic == c.pipeline.outputTopic || c.kafka.inputTopic == c.pipeline.deadLetterTopic {
            throw ConfigurationError("topics.input must differ from topics.output and topics.dead_letter")
        }
        if c.pipeline.outputTopic == c.pipeline.deadLetterTopic {
            throw ConfigurationError("topics.output must differ from topics.dead_letter")
        }
        try c.pipeline.validate()
        return c
    }

    // MARK: unknown keys

    private static func checkFlags(_ flags: [String: String], _ settings: [Setting]) throws(ConfigurationError) {
        let keys = settings.map(\.key)
        for key in flags.keys.sorted() where !keys.contains(key) {
            throw ConfigurationError("--set \(key): no such setting; did you mean \(closest(to: key, among: keys, separator: "."))?")
        }
    }

    private static func checkFile(keys fileKeys: [String], _ file: String, _ settings: [Setting]) throws(ConfigurationError) {
        let keys = settings.map(\.key)
        for key in fileKeys where !keys.contains(key) {
            throw ConfigurationError("\(file): \(key) is no setting; did you mean \(closest(to: key, among: keys, separator: "."))?")
        }
    }

    /// `EMBER_` variables are settings when they name a section (`EMBER_PIPELINE_…`) or
    /// are within two edits of a setting's variable (a typo of `EMBER_GROUP_ID`); other
    /// ones (`EMBER_TOOLS_DIR`, `EMBER_TEST_BROKERS`) belong to the Ops scripts.
    private static func checkEnvironment(_ environment: [String: String], _ settings: [Setting]) throws(ConfigurationError) {
        let names = settings.flatMap { [$0.environmentVariable] + ($0.alias.map { [$0] } ?? []) }
        let sections = Set(settings.map { "EMBER_" + $0.key.prefix { $0 != "." }.uppercased() + "_" })
        for name in environment.keys.sorted() where name.hasPrefix("EMBER_") && !names.contains(name) {
            let inSection = sections.contains { name.hasPrefix($0) }
            guard inSection || names.contains(where: { editDistance(name, $0) <= 2 }) else { continue }
            throw ConfigurationError(
                "environment variable \(name) is no setting; did you mean \(closest(to: name, among: names, separator: "_"))?")
        }
    }

    /// The candidate nearest to `name` by edit distance, where the part after the first
    /// separator alone may match (`topics.threads` → `model.threads`).
    static func closest(to name: String, among candidates: [String], separator: Character) -> String {
        func rest(_ s: String) -> Substring {
            let s = s.hasPrefix("EMBER_") ? s.dropFirst(6) : Substring(s)
            return s.firstIndex(of: separator).map { s[s.index(after: $0)...] } ?? s
        }
        func score(_ candidate: String) -> Int {
            min(editDistance(name, candidate), editDistance(String(rest(name)), String(rest(candidate))) + 1)
        }
        return candidates.min { score($0) < score($1) } ?? ""
    }

    /// Levenshtein distance.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var previous = Array(0...b.count)
        for i in a.indices {
            var current = [i + 1]
            for j in b.indices {
                current.append(min(previous[j + 1] + 1, current[j] + 1, previous[j] + (a[i] == b[j] ? 0 : 1)))
            }
            previous = current
        }
        return previous[b.count]
    }

    // MARK: typed lookups

    /// Typed lookups that tell "absent" (nil: the default stays) from "present but
    /// malformed or out of range" (an error naming the key and what it accepts).
    struct Reader {
        let config: ConfigReader
        init(_ config: ConfigReader) { self.config = config }

        func string(_ key: String) -> String? {
            config.string(forKey: ConfigKey(key))
        }

        func parsed<T>(_ key: String, expected: String, _ parse: (String) -> T?) throws(ConfigurationError) -> T? {
            guard let raw = config.string(forKey: ConfigKey(key)) else { return nil }
            guard let value = parse(raw.trimmingCharacters(in: .whitespaces)) else {
                throw ConfigurationError("\(key) must be \(expected), got '\(raw)'")
            }
            return value
        }

        func int(_ key: String, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int? {
            guard let value = try parsed(key, expected: "an integer", { Int($0) }) else { return nil }
            guard range.contains(value) else {
                throw ConfigurationError("\(key) must be between \(range.lowerBound) and \(range.upperBound), got \(value)")
            }
            return value
        }

        /// Non-finite values (`inf`, `nan`) are outside every range.
        func double(_ key: String, in range: ClosedRange<Double>) throws(ConfigurationError) -> Double? {
            guard let value = try parsed(key, expected: "a number", { Double($0) }) else { return nil }
            guard range.contains(value) else {
                throw ConfigurationError(
                    "\(key) must be between \(Setting.format(range.lowerBound)) and \(Setting.format(range.upperBound)), got \(string(key) ?? "\(value)")")
            }
            return value
        }

        /// A YAML list or a comma-separated value; nil when absent.
        func list(_ key: String) -> [String]? {
            // A YAML list keeps its entries whole (a property value may contain commas).
            let entries = config.stringArray(forKey: ConfigKey(key))
                ?? config.string(forKey: ConfigKey(key)).map { $0.split(separator: ",").map(String.init) }
            return entries?.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }

        /// `name=value` entries, from a YAML list or a comma-separated environment value.
        func properties(_ key: String) throws(ConfigurationError) -> [String: String]? {
            guard let entries = list(key) else { return nil }
            var properties: [String: String] = [:]
            for entry in entries {
                guard let equals = entry.firstIndex(of: "="), equals != entry.startIndex else {
                    throw ConfigurationError("\(key) entries must be name=value, got '\(entry)'")
                }
                let name = entry[..<equals].trimmingCharacters(in: .whitespaces)
                properties[name] = String(entry[entry.index(after: equals)...]).trimmingCharacters(in: .whitespaces)
            }
            return properties
        }
    }
}

/// The keys a configuration file sets, for telling unknown and misplaced keys apart
/// (swift-configuration answers lookups but does not list a file's keys).
enum ConfigurationFile {
    /// Dotted keys of the leaves (scalars and lists) of a YAML file.
    static func keys(ofYAMLFile path: String) throws -> [String] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var keys: [String] = []
        func walk(_ key: String, _ node: Node) {
            guard let mapping = node.mapping else {
                if !key.isEmpty { keys.append(key) }
                return
            }
            for (name, value) in mapping {
                let name = name.string ?? "\(name)"
                walk(key.isEmpty ? name : "\(key).\(name)", value)
            }
        }
        if let root = try Yams.compose(yaml: text) { walk("", root) }
        return keys
    }
}

