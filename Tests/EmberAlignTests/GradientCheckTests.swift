import EmberAlign
import EmberModel
import Testing

/// Hand-written backward passes against central finite differences (in Float, so the
/// tolerance is relative to the gradient's scale).
@Suite("Align gradient checks")
struct GradientCheckTests {
    static func randomValues(_ count: Int, _ g: inout SeededGenerator, scale: Float = 1) -> [Float] {
        (0..<count).map { _ in Float(g.unit() * 2 - 1) * scale }
    }

    /// Max |analytic − numeric| / max(1e-2, max |numeric|) over the entries checked.
    static func check(_ analytic: [Float], _ values: [Float], epsilon: Float = 1e-2, every stride: Int = 1, loss: ([Float]) -> Double) -> Double {
        var worst = 0.0, scale = 1e-2
        var numeric: [(Int, Double)] = []
        for i in Swift.stride(from: 0, to: values.count, by: stride) {
            var plus = values, minus = values
            plus[i] += epsilon
            minus[i] -= epsilon
            let n = (loss(plus) - loss(minus)) / Double(2 * epsilon)
            numeric.append((i, n))
            scale = max(scale, abs(n))
        }
        for (i, n) in numeric { worst = max(worst, abs(Double(analytic[i]) - n) / scale) }
        return worst
    }

    /// L = Σ y ⊙ R for a fixed random R: dL/dy = R.
    func layerCheck(_ layers: ProjectionHead.Layers) {
        var g = SeededGenerator(seed: 7)
        let rows = 5, input = 7, output = 6
        let head = TrainableHead(layers: layers, inputDim: input, outputDim: output, generator: &g)
        let x = Self.randomValues(rows * input, &g)
        let r = Self.randomValues(rows * output, &g)
        func objective(_ head: TrainableHead, _ x: [Float]) -> Double {
            zip(head.forward(x, rows: rows).y, r).reduce(0.0) { $0 + Double($1.0 * $1.1) }
        }
        let (_, cache) = head.forward(x, rows: rows)
        let (gradients, dx) = head.backward(r, cache: cache, inputGradient: true)
        for t in head.parameters.indices {
            // ε well below the pre-activations' distance from ReLU's kink.
            let error = Self.check(gradients[t], head.parameters[t], epsilon: 1e-3) { values in
                var changed = head
                changed.parameters[t] = values
                return objective(changed, x)
            }
            #expect(error < 2e-3, "\(layers.specification) tensor \(t): relative error \(error)")
        }
        let error = Self.check(dx!, x, epsilon: 1e-3) { objective(head, $0) }
        #expect(error < 2e-3, "\(layers.specification) input: relative error \(error)")
    }

    @Test func linearLayer() { layerCheck(.linear) }
    @Test func mlpWithGELU() { layerCheck(.mlp(hidden: 9, activation: .gelu)) }
    @Test func mlpWithReLU() { layerCheck(.mlp(hidden: 9, activation: .relu)) }

    @Test func activationDerivatives() {
        for activation in HeadActivation.allCases {
            for x: Float in [-2.5, -0.7, 0.3, 1.9] {
                let numeric = (activation.apply(x + 1e-3) - activation.apply(x - 1e-3)) / 2e-3
                #expect(abs(activation.derivative(x) - numeric) < 2e-3, "\(activation) at \(x)")
            }
        }
    }

    /// The Matryoshka InfoNCE loss, with some candidates masked, against both inputs.
    @Test func matryoshkaInfoNCE() {
        var g = SeededGenerator(seed: 3)
        let b = 6, dim = 8
        let loss = MatryoshkaInfoNCE(sizes: [8, 4, 2], temperature: 0.2)
        let ya = Self.randomValues(b * dim, &g), yp = Self.randomValues(b * dim, &g)
        var excluded = [Bool](repeating: false, count: b * b)
        excluded[0 * b + 3] = true
        excluded[4 * b + 1] = true
        let out = loss(anchors: ya, positives: yp, rows: b, dim: dim, excluded: excluded)
        #expect(out.losses.count == 3)
        let ea = Self.check(out.dYa, ya, epsilon: 1e-3) { loss(anchors: $0, positives: yp, rows: b, dim: dim, excluded: excluded).loss }
        let ep = Self.check(out.dYp, yp, epsilon: 1e-3) { loss(anchors: ya, positives: $0, rows: b, dim: dim, excluded: excluded).loss }
        #expect(ea < 5e-3, "anchors: relative error \(ea)")
        #expect(ep < 5e-3, "positives: relative error \(ep)")
    }

    /// Loss ∘ head: the chain the trainer runs (anchors and positives through one head).
    @Test func lossThroughTheHead() {
        var g = SeededGenerator(seed: 11)
        let b = 5, input = 10, output = 6
        let head = TrainableHead(layers: .mlp(hidden: 8, activation: .gelu), inputDim: input, outputDim: output, generator: &g)
        let loss = MatryoshkaInfoNCE(sizes: [6, 3], temperature: 0.1)
        let x = Self.randomValues(2 * b * input, &g)
        func total(_ head: TrainableHead) -> (Double, [Float], [Float]) {
            let y = head.forward(x, rows: 2 * b).y
            let out = loss(anchors: Array(y[0..<(b * output)]), positives: Array(y[(b * output)...]), rows: b, dim: output)
            return (out.loss, out.dYa, out.dYp)
        }
        let (_, dya, dyp) = total(head)
        let gradients = head.backward(dya + dyp, cache: head.forward(x, rows: 2 * b).cache).parameters
        for t in head.parameters.indices {
            let error = Self.check(gradients[t], head.parameters[t], epsilon: 1e-3) { values in
                var changed = head
                changed.parameters[t] = values
                return total(changed).0
            }
            #expect(error < 5e-3, "tensor \(t): relative error \(error)")
        }
    }
}
