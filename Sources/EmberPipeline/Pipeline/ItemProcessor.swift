/// The media and model work of the pipeline, split into its two stages.
public protocol ItemProcessor: Sendable {
    /// What the decode stage hands to the embedding stage (decoded, preprocessed inputs).
    associatedtype Prepared: Sendable

    /// Model id written into records and headers, e.g. `omni-small@3f2a9c1e`.
    var modelID: String { get }

    /// Fetches and decodes one item's media and preprocesses every modality. Blocking;
    /// runs on a decode thread. Throws a transient failure for what a retry may fix
    /// (fetch timeouts), a permanent one otherwise.
    func prepare(_ event: UploadEvent) throws(ItemFailure) -> Prepared

    /// True when `embed` runs the model on each item alone (batch-invariant results).
    /// The embed stage then takes what is queued without waiting to fill a batch, and
    /// counts every model call as a batch of one in `mean_batch`.
    var embedsOneByOne: Bool { get }

    /// Embeds the items the embed stage took together: one model pass per tower when
    /// `embedsOneByOne` is false (BLAS sees large matrices), one per item when true.
    /// One result per input, in order. Runs on the embedding thread.
    func embed(_ batch: [Prepared]) -> [Result<EmbeddedItem, ItemFailure>]

    /// `embed` with `lanes` embedding lanes' worth of cores: 1 when the other lanes are
    /// busy, more when idle lanes lend theirs (`PipelineConfiguration.lendIdleCores`). The
    /// results must not depend on it. The default ignores it.
    func embed(_ batch: [Prepared], lanes: Int) -> [Result<EmbeddedItem, ItemFailure>]
}

extension ItemProcessor {
    public func embed(_ batch: [Prepared], lanes: Int) -> [Result<EmbeddedItem, ItemFailure>] { embed(batch) }
}

/// One item's embedding, ready to become an `EmbeddingRecord`.
public struct EmbeddedItem: Sendable, Equatable {
    public var vector: [Float]
    public var semanticID: [Int]?
    public var modalities: ModalityCounts
    /// With a projection head: the Matryoshka size of `vector`.
    public var matryoshka: Int?
    /// With a head and `output.raw_vector`: the fused vector before the head.
    public var raw: RawVector?
    /// With `asr.enabled`: the transcript Ember made of the item's speech (its text went
    /// into the text block as `asr_text`).
    public var transcript: GeneratedTranscript?

    public init(vector: [Float], semanticID: [Int]? = nil, modalities: ModalityCounts, matryoshka: Int? = nil, raw: RawVector? = nil) {
        self.vector = vector
        self.semanticID = semanticID
        self.modalities = modalities
        self.matryoshka = matryoshka
        self.raw = raw
    }
}
