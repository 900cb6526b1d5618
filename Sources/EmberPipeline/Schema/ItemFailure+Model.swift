import EmberModel

extension ItemFailure {
    /// A model failure: `no_content` for an item with nothing to embed, else `model_error`.
    public init(_ error: ModelError) {
        self.init(error.failureClass, "\(error)")
    }
}
