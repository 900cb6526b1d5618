import EmberContract

/// Late fusion (DESIGN.md): each present tower's vector L2-normalized and scaled by its
/// weight, concatenated in `order` (an absent tower is a zero block), then L2-normalized.
public struct LateFusion: Sendable {
    public let order: [Modality]
    public let widths: [Modality: Int]
    public let weights: [Modality: Float]

    public var dimension: Int { order.reduce(0) { $0 + widths[$1, default: 0] } }

    public init(order: [Modality], widths: [Modality: Int], weights: [Modality: Float]) {
        self.order = order
        self.widths = widths
        self.weights = weights
    }

    /// Fuses the tower vectors present in `parts`; throws on a width mismatch.
    public func fuse(_ parts: [Modality: [Float]]) throws -> [Float] {
        var out: [Float] = []
        out.reserveCapacity(dimension)
        for modality in order {
            let width = widths[modality, default: 0]
            guard var part = parts[modality] else {
                out.append(contentsOf: repeatElement(0, count: width))
                continue
            }
            guard part.count == width else {
                throw ModelError.invalidInput("\(modality.rawValue) vector has \(part.count) values, fusion expects \(width)")
            }
            l2Normalize(&part)
            let weight = weights[modality, default: 1]
            out.append(contentsOf: part.map { $0 * weight })
        }
        l2Normalize(&out)
        return out
    }
}
