// Vectorized transcendental functions for the activation and softmax kernels. Scalar
// `erff`/`expf` calls dominated the audio tower's time (millions per clip); these run
// eight lanes at once. Accuracy is checked against libm in the kernel tests.

typealias Lanes = SIMD8<Float>

/// e^x, Cephes `expf` (range reduction by ln 2, degree-5 polynomial, exponent by bit
/// construction); relative error about 2e-7. Inputs below −87.3 give 0 (so −∞ does too).
@inline(__always)
func exp(_ x: Lanes) -> Lanes {
    let clamped = clamp(x, -87.3, 88.3)
    // n = round(x / ln 2) with the 1.5·2²³ trick: adding it leaves n in the low mantissa bits.
    let magic: Float = 12582912
    let shifted = clamped * 1.44269504088896341 + magic
    let n = shifted - magic
    var r = clamped - n * 0.693359375
    r = r + n * 2.12194440e-4
    let r2 = r * r
    var p = Lanes(repeating: 1.9875691500e-4)
    p = p * r + 1.3981999507e-3
    p = p * r + 8.3334519073e-3
    p = p * r + 4.1665795894e-2
    p = p * r + 1.6666665459e-1
    p = p * r + 5.0000001201e-1
    let y = p * r2 + r + 1
    let integer = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000
    let bits = (integer &+ 127) &<< 23
    let result = y * unsafeBitCast(bits, to: Lanes.self)
    return result.replacing(with: 0, where: x .< -87.3)
}

/// erf(x), the rational approximation Eigen and XLA use on [−4, 4] (|erf| rounds to 1
/// beyond); absolute error below 1e-6.
@inline(__always)
func erf(_ x: Lanes) -> Lanes {
    let c = clamp(x, -4, 4)
    let x2 = c * c
    var p = Lanes(repeating: -2.72614225801306e-10)
    p = p * x2 + 2.77068142495902e-08
    p = p * x2 + -2.10102402082508e-06
    p = p * x2 + -5.69250639462346e-05
    p = p * x2 + -7.34990630326855e-04
    p = p * x2 + -2.95459980854025e-03
    p = p * x2 + -1.60960333262415e-02
    p = p * c
    var q = Lanes(repeating: -1.45660718464996e-05)
    q = q * x2 + -2.13374055278905e-04
    q = q * x2 + -1.68282697438203e-03
    q = q * x2 + -7.37332916720468e-03
    q = q * x2 + -1.42647390514189e-02
    return p / q
}

/// Lane-wise clamp to [low, high] (the generic `clamped` is not specialized well).
@inline(__always)
func clamp(_ x: Lanes, _ low: Float, _ high: Float) -> Lanes {
    x.replacing(with: low, where: x .< low).replacing(with: high, where: x .> high)
}

/// Applies `body` to `count` floats in place, eight at a time (the tail through a padded vector).
@inline(__always)
func mapLanes(_ x: UnsafeMutablePointer<Float>, count: Int, _ body: (Lanes) -> Lanes) {
    let raw = UnsafeMutableRawPointer(x)
    var i = 0
    while i + 8 <= count {
        let v = raw.loadUnaligned(fromByteOffset: i * 4, as: Lanes.self)
        raw.storeBytes(of: body(v), toByteOffset: i * 4, as: Lanes.self)
        i += 8
    }
    if i < count {
        var tail = Lanes(repeating: 0)
        for j in 0..<(count - i) { tail[j] = x[i + j] }
        let out = body(tail)
        for j in 0..<(count - i) { x[i + j] = out[j] }
    }
}

/// Largest of `count` floats (−∞ when empty).
@inline(__always)
func maximum(_ x: UnsafePointer<Float>, count: Int) -> Float {
    let raw = UnsafeRawPointer(x)
    var best = Lanes(repeating: -.infinity)
    var i = 0
    while i + 8 <= count {
        let v = raw.loadUnaligned(fromByteOffset: i * 4, as: Lanes.self)
        best = best.replacing(with: v, where: v .> best)
        i += 8
    }
    var result = best.max()
    while i < count { result = max(result, x[i]); i += 1 }
    return result
}

/// Sum of `count` floats, eight partial sums at a time.
@inline(__always)
func sum(_ x: UnsafePointer<Float>, count: Int) -> Float {
    let raw = UnsafeRawPointer(x)
    var total = Lanes(repeating: 0)
    var i = 0
    while i + 8 <= count {
        total += raw.loadUnaligned(fromByteOffset: i * 4, as: Lanes.self)
        i += 8
    }
    var result = total.sum()
    while i < count { result += x[i]; i += 1 }
    return result
}
