import Foundation

/// Runs the built `ember` executable, which SwiftPM places next to the test bundle.
func runEmber(_ arguments: [String]) throws -> (status: Int32, output: String) {
    let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    var directory = testBinary.deletingLastPathComponent()
    // On Linux the test product is `<bin>/EmberPackageTests.xctest`; on macOS a bundle deeper inside.
    while !FileManager.default.isExecutableFile(atPath: directory.appendingPathComponent("ember").path) {
        let parent = directory.deletingLastPathComponent()
        guard parent.path != directory.path else { throw CLIError.notBuilt }
        directory = parent
    }
    return try runProcess(directory.appendingPathComponent("ember"), arguments)
}

/// Runs `executable` to completion; stdout and stderr together.
func runProcess(_ executable: URL, _ arguments: [String]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

enum CLIError: Error { case notBuilt }
