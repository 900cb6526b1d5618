// Bluestein's chirp-z algorithm: an N-point DFT as a circular convolution computed with
// power-of-two av_tx FFTs. FFmpeg 5.1's av_tx (Debian 12) has fast paths for lengths
// 2ⁿ and 3·2ⁿ, 5·2ⁿ, 7·2ⁿ, 9·2ⁿ, 15·2ⁿ only; Whisper's N = 400 = 2⁴·5² falls back to
// its O(N²) DFT, 180 ms for 4 s of audio. Two 1024-point FFTs per frame take ~1/30 of that.
import CFFmpeg

/// The precomputed parts of Bluestein's algorithm for one length N.
///
/// With c[n] = exp(−iπn²/N), the DFT X[k] = Σₙ x[n]·exp(−2πink/N) equals
/// c[k] · Σₙ (x[n]·c[n]) · conj(c[k−n]): a convolution of a[n] = x[n]·c[n] with
/// b[j] = conj(c[j]), done as IFFT(FFT(a)·FFT(b)) at a power-of-two length M ≥ 2N − 1.
/// Since |c[k]| = 1, the power |X[k]|² is the convolution's own power.
struct ChirpZTransform: Sendable {
    let length: Int
    let paddedLength: Int
    /// c[n], n < N.
    let chirp: [AVComplexDouble]
    /// FFT(b) / M: the transform of the conjugate chirp, with the inverse's 1/M folded in.
    let kernelSpectrum: [AVComplexDouble]

    init(length: Int) throws(ItemFailure) {
        self.length = length
        var padded = 1
        while padded < 2 * length - 1 { padded <<= 1 }
        paddedLength = padded
        // n² mod 2N keeps the phase exact for long lengths.
        chirp = (0..<length).map { n in
            let angle = Double.pi * Double((n * n) % (2 * length)) / Double(length)
            return AVComplexDouble(re: cos(angle), im: -sin(angle))
        }
        var kernel = [AVComplexDouble](repeating: AVComplexDouble(re: 0, im: 0), count: padded)
        for j in 0..<length {
            let conjugate = AVComplexDouble(re: chirp[j].re, im: -chirp[j].im)
            kernel[j] = conjugate
            if j > 0 { kernel[padded - j] = conjugate }
        }
        let transform = try FFT(length: padded, inverse: false)
        for i in 0..<padded { transform.input[i] = kernel[i] }
        transform.run()
        let scale = 1 / Double(padded)
        kernelSpectrum = (0..<padded).map { AVComplexDouble(re: transform.output[$0].re * scale, im: transform.output[$0].im * scale) }
    }

    /// Per-call state: av_tx contexts keep scratch memory, so each call owns its own.
    struct Run {
        let plan: ChirpZTransform
        private let forward: FFT
        private let inverse: FFT

        init(_ plan: ChirpZTransform) throws(ItemFailure) {
            self.plan = plan
            forward = try FFT(length: plan.paddedLength, inverse: false)
            inverse = try FFT(length: plan.paddedLength, inverse: true)
        }

        /// |X[k]|² for k = 0 … power.count − 1 of the real `samples` (N of them).
        func powerSpectrum(of samples: [Double], into power: inout [Float]) {
            let (n, m) = (plan.length, plan.paddedLength)
            for i in 0..<n {
                let c = plan.chirp[i]
                forward.input[i] = AVComplexDouble(re: samples[i] * c.re, im: samples[i] * c.im)
            }
            for i in n..<m { forward.input[i] = AVComplexDouble(re: 0, im: 0) }
            forward.run()
            plan.kernelSpectrum.withUnsafeBufferPointer { kernel in
                for i in 0..<m {
                    let (a, b) = (forward.output[i], kernel[i])
                    inverse.input[i] = AVComplexDouble(re: a.re * b.re - a.im * b.im, im: a.re * b.im + a.im * b.re)
                }
            }
            inverse.run()
            for k in 0..<power.count {
                let value = inverse.output[k]
                power[k] = Float(value.re * value.re + value.im * value.im)
            }
        }
    }

    /// One av_tx double-precision complex FFT of a fixed length, with aligned buffers.
    final class FFT {
        private var context: OpaquePointer?
        private let function: av_tx_fn
        let length: Int
        /// Aligned buffers the transform reads and writes.
        let input: UnsafeMutablePointer<AVComplexDouble>
        let output: UnsafeMutablePointer<AVComplexDouble>

        init(length: Int, inverse: Bool) throws(ItemFailure) {
            var context: OpaquePointer? = nil
            var function: av_tx_fn? = nil
            var scale: Double = 1
            let status = av_tx_init(&context, &function, AV_TX_DOUBLE_FFT, inverse ? 1 : 0, Int32(length), &scale, 0)
            guard status >= 0, let function else {
                av_tx_uninit(&context)
                throw .invalid("av_tx_init(FFT, \(length)) failed: \(status)")
            }
            // av_tx wants SIMD-aligned buffers (av_malloc).
            let bytes = length * MemoryLayout<AVComplexDouble>.stride
            guard let input = av_malloc(bytes)?.bindMemory(to: AVComplexDouble.self, capacity: length),
                let output = av_malloc(bytes)?.bindMemory(to: AVComplexDouble.self, capacity: length)
            else {
                av_tx_uninit(&context)
                throw ItemFailure(.mediaInvalid, "out of memory for the FFT buffers", isTransient: true)
            }
            self.context = context
            self.function = function
            self.length = length
            self.input = input
            self.output = output
        }

        deinit {
            av_tx_uninit(&context)
            av_free(input)
            av_free(output)
        }

        /// Transforms `input` into `output`.
        func run() {
            function(context, output, input, MemoryLayout<AVComplexDouble>.stride)
        }
    }
}
