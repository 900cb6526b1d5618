import EmberModel

/// Gives an item's embedding its semantic ID: the codebook's codes, plus the
/// disambiguation level when configured. Made once at start-up, where a codebook of
/// another model or size is refused (its codes would look valid and mean nothing).
public struct SemanticIDAssigner: Sendable {
    public let codebook: Codebook
    public let disambiguation: SemanticIDDisambiguation

    /// Throws `.modelMismatch` naming both ids when the codebook was trained for another
    /// model, `.dimensionMismatch` when its vectors are not the model's size.
    public init(codebook: Codebook, disambiguation: SemanticIDDisambiguation = .none, modelID: String, dim: Int) throws(CodebookError) {
        guard ModelIdentity.sameWeights(codebook.modelID, modelID) else { throw .modelMismatch(codebook: codebook.modelID, model: modelID) }
        guard codebook.dim == dim else { throw .dimensionMismatch(got: dim, expected: codebook.dim) }
        self.codebook = codebook
        self.disambiguation = disambiguation
    }

    public func semanticID(for vector: [Float], itemID: String) throws(CodebookError) -> [Int] {
        var codes = try codebook.codes(for: vector)
        if let extra = disambiguation.extraCode(itemID: itemID) { codes.append(extra) }
        return codes
    }
}
