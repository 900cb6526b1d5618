/// Late fusion (DESIGN.md): each present tower's vector L2-normalized and scaled by its
/// weight, concatenated in `order` (an absent tower is a zero block), then L2-normalized.
public struct LateFusion: Sendable {
    public let order: [String]
    public let widths: [String: Int]
    public let weights: [String: Float]

    public var dimension: Int { order.reduce(0) { $0 + widths[$1, default: 0] } }

    public init(order: [String], widths: [String: Int], weights: [String: Float]) {
        self.order = order
        self.widths = widths
        self.weights = weights
    }

    /// Fuses the tower vectors present in `parts`; throws on a width mismatch.
    public func fuse(_ parts: [String: [Float]]) throws -> [Float] {
        var out: [Float] = []
        out.reserveCapacity(dimension)
        for name in order {
            let width = widths[name, default: 0]
            guard var part = parts[name] else {
                out.append(contentsOf: repeatElement(0, count: width))
                continue
            }
            guard part.count == width else {
                throw ModelError.invalidInput("\(name) vector has \(part.count) values, fusion expects \(width)")
            }
            l2Normalize(&part)
            let weight = weights[name, default: 1]
            out.append(contentsOf: part.map { $0 * weight })
        }
        l2Normalize(&out)
        return out
    }
}
