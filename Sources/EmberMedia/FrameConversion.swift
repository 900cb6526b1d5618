import CFFmpeg

/// Converts a decoded video frame to packed RGB24 at its own size with swscale.
func rgbImage(from frame: UnsafeMutablePointer<AVFrame>, timestampSeconds: Double?) throws(FFmpegError) -> RGBImage {
    let width = frame.pointee.width
    let height = frame.pointee.height
    guard width > 0, height > 0,
        let scaler = sws_getContext(
            width, height, AVPixelFormat(frame.pointee.format),
            width, height, AV_PIX_FMT_RGB24, SWS_BILINEAR, nil, nil, nil)
    else {
        throw FFmpegError(code: ember_averror_invaliddata(), operation: "create scaler for \(width)x\(height)")
    }
    defer { sws_freeContext(scaler) }

    var pixels = [UInt8](repeating: 0, count: Int(width) * Int(height) * 3)
    let status = pixels.withUnsafeMutableBufferPointer { output -> Int32 in
        var destination: UnsafeMutablePointer<UInt8>? = output.baseAddress
        var destinationStride = width * 3
        // AVFrame.data and linesize are 8-element C arrays, imported as tuples.
        return withUnsafePointer(to: &frame.pointee.data) { data in
            data.withMemoryRebound(to: UnsafePointer<UInt8>?.self, capacity: 8) { source in
                withUnsafePointer(to: &frame.pointee.linesize) { linesize in
                    linesize.withMemoryRebound(to: Int32.self, capacity: 8) { sourceStride in
                        sws_scale(scaler, source, sourceStride, 0, height, &destination, &destinationStride)
                    }
                }
            }
        }
    }
    try check(status, "convert frame to RGB")
    return RGBImage(width: Int(width), height: Int(height), pixels: pixels, timestampSeconds: timestampSeconds)
}
