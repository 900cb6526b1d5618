import EmberModel

/// A projection head as the worker applies it (`model.head`, `model.head_dims`,
/// `output.raw_vector`): after fusion, on the embedding thread, the fused vector becomes
/// head(vector) cut to `dims` and normalized; records carry the head's model id and the
/// size in `matryoshka`, and with `keepRaw` the fused vector too. Made once at start-up,
/// where a head for another model or size is refused.
public struct AppliedHead: Sendable {
    public let head: ProjectionHead
    public let dims: Int
    public let keepRaw: Bool

    public var modelID: String { head.modelID }

    /// `dims` nil or 0: the head's largest size. Throws naming both ids when the head was
    /// trained on another model's vectors, or when `dims` is not one of its sizes.
    public init(head: ProjectionHead, dims: Int?, keepRaw: Bool, modelID: String, modelDim: Int) throws(HeadSetupError) {
        guard ModelIdentity.sameWeights(head.metadata.baseModel, modelID) else {
            throw HeadSetupError("the head was trained on \(head.metadata.baseModel) vectors, but the model is \(modelID); train one for this model (ember align train)")
        }
        guard head.inputDim == modelDim else { throw HeadSetupError("the head takes \(head.inputDim)-dim vectors, the model makes \(modelDim)") }
        let dims = dims.flatMap { $0 > 0 ? $0 : nil } ?? head.matryoshka[0]
        guard head.matryoshka.contains(dims) else {
            throw HeadSetupError("model.head_dims \(dims) is not one of the head's Matryoshka sizes \(head.matryoshka.map(String.init).joined(separator: ", "))")
        }
        self.head = head
        self.dims = dims
        self.keepRaw = keepRaw
    }

    /// Replaces the item's fused vector by the head's output, keeping the fused one when asked.
    public func apply(to item: inout EmbeddedItem, engineModelID: String) {
        if keepRaw { item.raw = RawVector(model: engineModelID, vector: item.vector) }
        item.vector = head.embed(item.vector, dims: dims)
        item.matryoshka = dims
    }
}

/// A head that cannot be applied to this model; the message says what to fix.
public struct HeadSetupError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
