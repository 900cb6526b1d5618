import Foundation

/// Runs the built `ember` executable, which SwiftPM places next to the test bundle.
/// `environment` entries are added to (or replace) the test process's own.
func runEmber(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
    let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    var directory = testBinary.deletingLastPathComponent()
    // On Linux the test product is `<bin>/EmberPackageTests.xctest`; on macOS a bundle deeper inside.
    while !FileManager.default.isExecutableFile(atPath: directory.appendingPathComponent("ember").path) {
        let parent = directory.deletingLastPathComponent()
        guard parent.path != directory.path else { throw CLIError.notBuilt }
        directory = parent
    }
    return try runProgram(directory.appendingPathComponent("ember"), arguments, environment: environment)
}

/// Runs a program to its end; its stdout and stderr together. `environment` entries are
/// added to (or replace) the test process's own.
func runProgram(
    _ executable: URL, _ arguments: [String] = [], in directory: URL? = nil, environment: [String: String] = [:]
) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    if let directory { process.currentDirectoryURL = directory }
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

enum CLIError: Error { case notBuilt }
