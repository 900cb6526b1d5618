import CFFmpeg
import EmberContract

/// Converts decoded video frames to packed RGB24 with swscale, using each frame's own
/// colour matrix and range as the ffmpeg CLI does, and scales them in the same call to
/// the size the vision tower's preprocessing asks for (`scaledSize`, with its
/// interpolation): each frame is scaled exactly once, from the decoded picture. Without
/// a preprocessing the decoded size is kept. Keeps its swscale context between frames of
/// the same size and format (one converter per decode call; not shared between threads).
final class FrameConverter {
    private var scaler: OpaquePointer?
    let scaling: VisionPreprocessing?

    init(scaling: VisionPreprocessing?) { self.scaling = scaling }

    deinit { sws_freeContext(scaler) }

    func rgbImage(from frame: UnsafeMutablePointer<AVFrame>, timestampSeconds: Double?) throws(FFmpegError) -> RGBImage {
        let width = frame.pointee.width
        let height = frame.pointee.height
        let target = scaling?.scaledSize(width: Int(width), height: Int(height)) ?? (width: Int(width), height: Int(height))
        // Unscaled: bicubic, as the CLI's scale filter (swscale's unscaled fast path is
        // taken either way). swscale widens both kernels with the scale factor when
        // shrinking, so neither aliases.
        let flags = scaling?.interpolation == .bilinear ? SWS_BILINEAR : SWS_BICUBIC
        guard width > 0, height > 0,
            let scaler = sws_getCachedContext(
                scaler, width, height, AVPixelFormat(frame.pointee.format),
                Int32(target.width), Int32(target.height), AV_PIX_FMT_RGB24, flags, nil, nil, nil)
        else {
            throw FFmpegError(code: ember_averror_invaliddata(), operation: "create scaler for \(width)x\(height)")
        }
        self.scaler = scaler
        applyColorDetails(of: frame, to: scaler)

        var pixels = [UInt8](repeating: 0, count: target.width * target.height * 3)
        let status = pixels.withUnsafeMutableBufferPointer { output -> Int32 in
            var destination: UnsafeMutablePointer<UInt8>? = output.baseAddress
            var destinationStride = Int32(target.width * 3)
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
        return RGBImage(width: target.width, height: target.height, pixels: pixels, timestampSeconds: timestampSeconds)
    }
}

/// Tells swscale the frame's YUV matrix and range when the stream declares them
/// (otherwise swscale's defaults stand: BT.601, limited range, full range for yuvj*).
private func applyColorDetails(of frame: UnsafeMutablePointer<AVFrame>, to scaler: OpaquePointer) {
    let colorspace = frame.pointee.colorspace
    let range = frame.pointee.color_range
    guard colorspace != AVCOL_SPC_UNSPECIFIED || range != AVCOL_RANGE_UNSPECIFIED else { return }
    var inverseTable: UnsafeMutablePointer<Int32>? = nil
    var table: UnsafeMutablePointer<Int32>? = nil
    var sourceRange: Int32 = 0, destinationRange: Int32 = 0
    var brightness: Int32 = 0, contrast: Int32 = 0, saturation: Int32 = 0
    guard sws_getColorspaceDetails(
        scaler, &inverseTable, &sourceRange, &table, &destinationRange, &brightness, &contrast, &saturation) >= 0
    else { return }
    let coefficients = colorspace != AVCOL_SPC_UNSPECIFIED ? sws_getCoefficients(Int32(colorspace.rawValue)) : UnsafePointer(inverseTable)
    if range == AVCOL_RANGE_JPEG { sourceRange = 1 } else if range == AVCOL_RANGE_MPEG { sourceRange = 0 }
    sws_setColorspaceDetails(scaler, coefficients, sourceRange, table, destinationRange, brightness, contrast, saturation)
}
