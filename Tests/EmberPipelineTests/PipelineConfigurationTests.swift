import Testing
@testable import EmberPipeline

@Suite("Pipeline configuration")
struct PipelineConfigurationTests {
    @Test("defaults are valid")
    func defaults() throws {
        try PipelineConfiguration().validate()
    }

    @Test("invalid values name the setting", arguments: [
        "decode concurrency", "max batch size", "resume-below", "must differ", "max attempts",
    ])
    func invalid(setting: String) {
        var configuration = PipelineConfiguration()
        switch setting {
        case "decode concurrency": configuration.decodeConcurrency = 0
        case "max batch size": configuration.maxBatchSize = 0
        case "resume-below": configuration.resumeBelow = configuration.maxInFlight + 1
        case "must differ": configuration.deadLetterTopic = configuration.outputTopic
        default: configuration.maxAttempts = 0
        }
        let error = #expect(throws: ConfigurationError.self) { try configuration.validate() }
        #expect(error?.message.contains(setting) == true, "\(String(describing: error))")
    }
}
