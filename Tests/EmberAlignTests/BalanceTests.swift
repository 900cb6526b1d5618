import EmberAlign
import EmberModel
import Testing

@Suite("Align balancing and thresholds")
struct BalanceTests {
    @Test func sinkhornPlanHasTheMarginals() {
        var g = SeededGenerator(seed: 5)
        let n = 7, m = 5
        let cost = (0..<(n * m)).map { _ in g.unit() }
        let a = [0.1, 0.2, 0.05, 0.15, 0.2, 0.1, 0.2], b = [0.3, 0.1, 0.2, 0.25, 0.15]
        let t = Sinkhorn.transport(cost: cost, rows: n, columns: m, a: a, b: b, epsilon: 0.05)
        for i in 0..<n { #expect(abs((0..<m).reduce(0) { $0 + t.plan[i * m + $1] } - a[i]) < 1e-6, "row \(i)") }
        for j in 0..<m { #expect(abs((0..<n).reduce(0) { $0 + t.plan[$1 * m + j] } - b[j]) < 1e-6, "column \(j)") }
        #expect(t.plan.allSatisfy { $0 >= 0 })
        #expect(t.iterations < 1000)
    }

    @Test func closerSourcesWeighMore() {
        var g = SeededGenerator(seed: 9)
        let dim = 16
        func cloud(_ center: [Float], _ count: Int, spread: Float) -> [Float] {
            (0..<count).flatMap { _ -> [Float] in
                var v = center.map { $0 + Float(g.unit() * 2 - 1) * spread }
                let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
                for i in v.indices { v[i] /= norm }
                return v
            }
        }
        let c1 = (0..<dim).map { Float($0 == 0 ? 1 : 0) }, c2 = (0..<dim).map { Float($0 == 1 ? 1 : 0) }
        let validation = cloud(c1, 40, spread: 0.3)
        let near = Sinkhorn.distance(cloud(c1, 30, spread: 0.3), validation, dim: dim).cost
        let far = Sinkhorn.distance(cloud(c2, 30, spread: 0.3), validation, dim: dim).cost
        let mixed = Sinkhorn.distance(cloud(c1, 15, spread: 0.3) + cloud(c2, 15, spread: 0.3), validation, dim: dim).cost
        #expect(near < mixed && mixed < far, "distances near \(near), mixed \(mixed), far \(far)")
        let weights = Sinkhorn.weights(distances: [near, far, mixed], temperature: 0.05)
        #expect(abs(weights.reduce(0, +) - 1) < 1e-12)
        #expect(weights[0] > weights[2] && weights[2] > weights[1], "\(weights)")
    }

    /// Positives 0.9 0.8 0.7 0.6, negatives 0.65 0.3 0.2 0.1: t = 0.7 gives F1 6/7 (one
    /// positive missed), t = 0.6 gives 8/9 (one negative let in); 0.6 wins.
    @Test func f1ThresholdOnAConstructedCase() {
        let choice = F1Threshold.best(positives: [0.9, 0.8, 0.7, 0.6], negatives: [0.65, 0.3, 0.2, 0.1])
        #expect(choice?.threshold == 0.6)
        #expect(abs((choice?.f1 ?? 0) - 8.0 / 9) < 1e-12)
        #expect(choice?.recall == 1)
        // Separable scores: the lowest positive is the threshold, F1 1.
        #expect(F1Threshold.best(positives: [0.9, 0.85], negatives: [0.5, 0.2]) == .init(threshold: 0.85, f1: 1, precision: 1, recall: 1))
        #expect(F1Threshold.best(positives: [], negatives: [0.1]) == nil)
    }
}
