/// What went into an item's embedding, per modality: the `modalities` object of the
/// output record (DESIGN.md), counted by the model and written unchanged.
public struct ModalityCounts: Sendable, Equatable, Codable {
    public var visionFrames: Int
    public var textTokens: Int
    public var audioSeconds: Double

    enum CodingKeys: String, CodingKey {
        case visionFrames = "vision_frames"
        case textTokens = "text_tokens"
        case audioSeconds = "audio_seconds"
    }

    public init(visionFrames: Int = 0, textTokens: Int = 0, audioSeconds: Double = 0) {
        self.visionFrames = visionFrames
        self.textTokens = textTokens
        self.audioSeconds = audioSeconds
    }
}
