import EmberModel
import FuzzSupport

let scratch = ScratchFile(name: "model.safetensors")

/// A weights file: the header must parse or throw, and every tensor it admits must
/// read within the file.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafeTensors(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    guard let start else { return 0 }
    scratch.write(fuzzInput(start, count))
    guard let file = try? SafeTensorsFile(path: scratch.path) else { return 0 }
    for name in file.names {
        _ = try? file.floats(name)
    }
    return 0
}

@main enum Main {
    static func main() { runFuzzer(fuzzSafeTensors) }
}
