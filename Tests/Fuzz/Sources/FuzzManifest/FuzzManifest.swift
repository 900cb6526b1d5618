import EmberModel
import FuzzSupport

let scratch = ScratchFile(name: "manifest.json")

/// A model directory's manifest.json: any bytes must load or throw.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzManifest(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    guard let start else { return 0 }
    scratch.write(fuzzInput(start, count))
    _ = try? ModelManifest.load(directory: scratch.directory)
    return 0
}

@main enum Main {
    static func main() { runFuzzer(fuzzManifest) }
}
