/// The towers of a model and the modalities of an item, by their manifest names
/// (`towers.<name>`, `fusion.order`, `fusion.weights`). An enum, not strings, so a
/// misspelled tower is a compile error here and a decoding error in a manifest.
public enum Modality: String, Sendable, Hashable, CaseIterable, Codable, CodingKeyRepresentable {
    case text
    case vision
    case audio
}
