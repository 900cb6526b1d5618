import EmberModel

/// How `ember align train` trains a head; every value has a flag of the same meaning.
public struct AlignConfiguration: Sendable, Equatable {
    public var layers = ProjectionHead.Layers.mlp(hidden: 1024, activation: .gelu)
    public var outputDim = 512
    /// Nested sizes trained (each prefix normalized), largest first; the largest is `outputDim`.
    public var matryoshka = [512, 256, 128]
    public var temperature: Float = 0.05
    public var batchSize = 256
    public var learningRate: Float = 1e-3
    public var weightDecay: Float = 0.01
    public var maxEpochs = 20
    /// Steps per epoch; nil: one pass over the training pairs (10 to 400 steps).
    public var stepsPerEpoch: Int?
    /// Epochs without a better validation recall before stopping (the best head is kept).
    public var patience = 3
    public var seed: UInt64 = 0
    /// Leave out in-batch negatives that clear the source's F1 threshold.
    public var hardNegativeFilter = true
    /// Source sampling weights from Sinkhorn distances to the validation split; false: equal.
    public var sinkhorn = true
    public var sinkhornTemperature = 0.05
    /// Validation pairs per source for recall and thresholds (a seeded sample).
    public var validationPairs = 1000
    /// Recall@k on validation.
    public var recallK = 50

    public init() {}
}
