import ArgumentParser
import EmberMedia
import EmberPipeline
import Logging

/// Flags shared by `ember run` and `ember replay`. Each overrides the configuration
/// file and the environment (see Config/ember.yaml).
struct WorkerOptions: ParsableArguments {
    @Option(help: "Configuration file (YAML). Default: none, built-in defaults and EMBER_* variables.")
    var config: String?

    @Option(help: "Kafka bootstrap servers (kafka.brokers).")
    var brokers: String?

    @Option(help: "Consumer group id (kafka.group_id).")
    var groupID: String?

    @Option(help: "Input topic (topics.input).")
    var inputTopic: String?

    @Option(help: "Output topic (topics.output).")
    var outputTopic: String?

    @Option(help: "Dead-letter topic (topics.dead_letter).")
    var dlqTopic: String?

    @Option(help: "Model directory (model.directory).")
    var model: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (log.level).")
    var logLevel: String?

    @Option(name: .customLong("set"), help: ArgumentHelp("Any configuration key, e.g. --set pipeline.max_batch_size=8.", valueName: "key=value"))
    var settings: [String] = []

    /// The flags as configuration keys.
    func flagValues() throws -> [String: String] {
        var values: [String: String] = [:]
        for setting in settings {
            guard let equals = setting.firstIndex(of: "="), equals != setting.startIndex else {
                throw ValidationError("--set needs key=value, got '\(setting)'")
            }
            values[String(setting[..<equals])] = String(setting[setting.index(after: equals)...])
        }
        let named: [(String, String?)] = [
            ("kafka.brokers", brokers), ("kafka.group_id", groupID), ("topics.input", inputTopic),
            ("topics.output", outputTopic), ("topics.dead_letter", dlqTopic), ("model.directory", model),
            ("log.level", logLevel),
        ]
        for case (let key, let value?) in named { values[key] = value }
        return values
    }

    /// Loads the configuration and sets up logging at its level.
    func loadConfiguration() async throws -> WorkerConfiguration {
        do {
            let configuration = try await ConfigurationLoader.load(file: config, flags: try flagValues())
            ProcessLogging.bootstrap(level: configuration.logLevel)
            return configuration
        } catch let error as ConfigurationError {
            throw ValidationError("configuration: \(error.message)")
        }
    }
}

/// One logging set-up per process: structured lines (message + key=value metadata) on
/// stderr. FFmpeg's own unstructured stderr lines are silenced below debug: every
/// media failure surfaces as a typed error carrying FFmpeg's message.
enum ProcessLogging {
    nonisolated(unsafe) private static var isBootstrapped = false

    static func bootstrap(level: Logger.Level) {
        guard !isBootstrapped else { return }
        isBootstrapped = true
        FFmpegLogLevel.current = level <= .debug ? .warning : .quiet
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}
