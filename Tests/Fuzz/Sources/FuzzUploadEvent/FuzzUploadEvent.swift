import EmberPipeline
import FuzzSupport

/// Input-topic message values: any bytes must give an event or a typed failure.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzUploadEvent(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    guard let start else { return 0 }
    _ = try? UploadEvent.parse(fuzzInput(start, count))
    return 0
}

@main enum Main {
    static func main() { runFuzzer(fuzzUploadEvent) }
}
