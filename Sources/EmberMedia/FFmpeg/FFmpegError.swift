import CFFmpeg

/// An error code returned by an FFmpeg call, with FFmpeg's explanation. Internal: every
/// one becomes an `ItemFailure` (`MediaInput.classify`) before it leaves FFmpeg/.
struct FFmpegError: Error, Sendable, Equatable, CustomStringConvertible {
    let code: Int32
    let operation: String
    let message: String

    init(code: Int32, operation: String) {
        self.code = code
        self.operation = operation
        var buffer = [CChar](repeating: 0, count: 256)
        ember_av_strerror(code, &buffer, buffer.count)
        self.message = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    var description: String { "\(operation): \(message) (\(code))" }
}

/// Throws an `FFmpegError` when an FFmpeg call returned a negative status.
@discardableResult
func check(_ status: Int32, _ operation: @autoclosure () -> String) throws(FFmpegError) -> Int32 {
    if status < 0 { throw FFmpegError(code: status, operation: operation()) }
    return status
}
