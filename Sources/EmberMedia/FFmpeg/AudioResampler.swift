import CFFmpeg

/// swresample from whatever the decoder produces to mono packed float at one rate.
/// Reconfigures itself when the input format changes mid-stream.
final class AudioResampler {
    private var context: OpaquePointer?
    private let output: UnsafeMutablePointer<AVFrame>
    let sampleRate: Int32

    init(sampleRate: Int32) throws(FFmpegError) {
        guard let output = av_frame_alloc() else { throw FFmpegError(code: ember_averror_errno(12), operation: "allocate frame") }
        guard let context = swr_alloc() else {
            var owned: UnsafeMutablePointer<AVFrame>? = output
            av_frame_free(&owned)
            throw FFmpegError(code: ember_averror_errno(12), operation: "allocate resampler")
        }
        self.output = output
        self.context = context
        self.sampleRate = sampleRate
    }

    deinit {
        swr_free(&context)
        var owned: UnsafeMutablePointer<AVFrame>? = output
        av_frame_free(&owned)
    }

    /// Resamples `frame` (nil drains the resampler) and appends at most
    /// `limit - samples.count` samples.
    func convert(_ frame: UnsafeMutablePointer<AVFrame>?, appendingTo samples: inout [Float], limit: Int) throws(FFmpegError) {
        var status = convertOnce(frame)
        if status == ember_averror_input_changed() || status == ember_averror_output_changed() {
            swr_close(context)  // swr_convert_frame configures a closed context from the frames
            status = convertOnce(frame)
        }
        try check(status, "resample audio")
        let produced = Int(output.pointee.nb_samples)
        guard produced > 0, let data = output.pointee.data.0 else { return }
        let count = min(produced, limit - samples.count)
        guard count > 0 else { return }
        data.withMemoryRebound(to: Float.self, capacity: produced) { floats in
            samples.append(contentsOf: UnsafeBufferPointer(start: floats, count: count))
        }
    }

    private func convertOnce(_ frame: UnsafeMutablePointer<AVFrame>?) -> Int32 {
        av_frame_unref(output)
        ember_av_channel_layout_mono(&output.pointee.ch_layout)
        output.pointee.sample_rate = sampleRate
        output.pointee.format = AV_SAMPLE_FMT_FLT.rawValue
        if frame == nil && swr_is_initialized(context) == 0 { return 0 }
        return swr_convert_frame(context, output, frame)
    }
}
