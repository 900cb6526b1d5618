import Foundation

/// How an output record carries its vector (`output.encoding`), smallest last:
///
/// | encoding | record `dtype` | bytes for 2048 dims | decoded as |
/// |---|---|---|---|
/// | `f32` | `f32` | 8192 | the vector |
/// | `f16` | `f16` | 4096 | IEEE half |
/// | `int8` | `i8`, plus `scale` | 2048 | `q · scale`, q ∈ [−127, 127], scale = max\|v\| / 127 |
/// | `binary` | `bits` | 256 | sign bits, bit i at byte i / 8, bit i % 8 (LSB first), 1 = v ≥ 0; compare by Hamming distance |
public enum VectorEncoding: String, Sendable, Codable, CaseIterable {
    case f32, f16, int8, binary

    /// The record's `dtype` for this encoding.
    public var dtype: EmbeddingDType {
        switch self {
        case .f32: .float32
        case .f16: .float16
        case .int8: .int8
        case .binary: .bits
        }
    }

    public init(_ dtype: EmbeddingDType) {
        switch dtype {
        case .float32: self = .f32
        case .float16: self = .f16
        case .int8: self = .int8
        case .bits: self = .binary
        }
    }

    /// The encoded bytes and, for int8, the scale that decodes them.
    public func encode(_ vector: [Float]) -> (bytes: [UInt8], scale: Float?) {
        switch self {
        case .int8:
            let scale = Self.int8Scale(of: vector)
            return (Self.int8Bytes(of: vector, scale: scale), scale)
        default:
            return (dtype.littleEndianBytes(of: vector), nil)
        }
    }

    /// The vector the bytes stand for; nil when their length does not fit `dim`.
    /// Binary decodes to ±1/√dim, the unit vector of the signs.
    public func decode(_ bytes: [UInt8], dim: Int, scale: Float?) -> [Float]? {
        switch self {
        case .f32, .f16:
            guard let v = dtype.vector(fromLittleEndian: bytes), v.count == dim else { return nil }
            return v
        case .int8:
            guard bytes.count == dim, let scale, scale.isFinite else { return nil }
            return bytes.map { Float(Int8(bitPattern: $0)) * scale }
        case .binary:
            guard bytes.count == (dim + 7) / 8, dim > 0 else { return nil }
            let magnitude = 1 / Float(dim).squareRoot()
            return (0..<dim).map { bytes[$0 >> 3] & (1 << ($0 & 7)) != 0 ? magnitude : -magnitude }
        }
    }

    /// max|v| / 127, so the largest component maps to ±127 (1 for the zero vector, so
    /// decoding never divides by zero).
    public static func int8Scale(of vector: [Float]) -> Float {
        let largest = vector.reduce(Float(0)) { max($0, abs($1)) }
        return largest > 0 && largest.isFinite ? largest / 127 : 1
    }

    /// round(v / scale) clamped to [−127, 127], as two's-complement bytes.
    public static func int8Bytes(of vector: [Float], scale: Float) -> [UInt8] {
        vector.map { UInt8(bitPattern: Int8(max(-127, min(127, ($0 / scale).rounded())))) }
    }

    /// One bit per dimension, 1 where v ≥ 0; bit i at byte i / 8, position i % 8.
    public static func signBits(of vector: [Float]) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: (vector.count + 7) / 8)
        for (i, v) in vector.enumerated() where v >= 0 { bytes[i >> 3] |= 1 << (i & 7) }
        return bytes
    }
}
