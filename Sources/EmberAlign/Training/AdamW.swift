import Foundation

/// AdamW (Loshchilov & Hutter): Adam's moment estimates with bias correction, and weight
/// decay applied to the weights directly (decoupled from the gradient), only to the
/// tensors listed in `decayed` (weight matrices, not biases).
public struct AdamW: Sendable {
    public var learningRate: Float
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var epsilon: Float = 1e-8
    public var weightDecay: Float
    public let decayed: Set<Int>
    private var m: [[Float]]
    private var v: [[Float]]
    public private(set) var step = 0

    public init(shapes: [Int], learningRate: Float, weightDecay: Float, decayed: Set<Int>) {
        self.learningRate = learningRate
        self.weightDecay = weightDecay
        self.decayed = decayed
        m = shapes.map { [Float](repeating: 0, count: $0) }
        v = m
    }

    public mutating func update(_ parameters: inout [[Float]], gradients: [[Float]]) {
        step += 1
        let c1 = 1 - pow(beta1, Float(step)), c2 = 1 - pow(beta2, Float(step))
        for t in parameters.indices {
            let decay = decayed.contains(t) ? learningRate * weightDecay : 0
            for i in parameters[t].indices {
                let g = gradients[t][i]
                m[t][i] = beta1 * m[t][i] + (1 - beta1) * g
                v[t][i] = beta2 * v[t][i] + (1 - beta2) * g * g
                let mHat = m[t][i] / c1, vHat = v[t][i] / c2
                parameters[t][i] -= decay * parameters[t][i] + learningRate * mHat / (vHat.squareRoot() + epsilon)
            }
        }
    }
}
