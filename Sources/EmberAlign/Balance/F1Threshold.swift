/// The similarity threshold that best separates a source's true pairs from random ones:
/// the t maximizing F1 of "score ≥ t ⇒ a positive pair" on the validation split. During
/// training an in-batch candidate scoring at least t against the anchor is not used as a
/// negative (it would be classified a positive: a near-duplicate of the positive, or a
/// positive nobody logged).
public enum F1Threshold {
    public struct Choice: Sendable, Equatable {
        public var threshold: Float
        public var f1: Double
        public var precision: Double
        public var recall: Double

        public init(threshold: Float, f1: Double, precision: Double, recall: Double) {
            self.threshold = threshold
            self.f1 = f1
            self.precision = precision
            self.recall = recall
        }
    }

    public static func best(positives: [Float], negatives: [Float]) -> Choice? {
        guard !positives.isEmpty else { return nil }
        let scored = (positives.map { ($0, true) } + negatives.map { ($0, false) }).sorted { $0.0 > $1.0 }
        var tp = 0, fp = 0
        var best: Choice?
        var i = 0
        while i < scored.count {
            let t = scored[i].0
            // Every score equal to t is on the same side of the threshold.
            while i < scored.count && scored[i].0 == t {
                if scored[i].1 { tp += 1 } else { fp += 1 }
                i += 1
            }
            let fn = positives.count - tp
            let f1 = Double(2 * tp) / Double(2 * tp + fp + fn)
            if best == nil || f1 > best!.f1 {
                best = Choice(threshold: t, f1: f1, precision: Double(tp) / Double(tp + fp), recall: Double(tp) / Double(positives.count))
            }
        }
        return best
    }
}
