/// How (and whether) a semantic ID is made unique per item. Residual codes collide:
/// near-identical items share all L codes. Generative-retrieval systems (TIGER) append
/// one more level that numbers the items of a colliding code 0, 1, 2, …; that counter
/// needs one registry that sees every item in order, which a group of at-least-once
/// workers replaying the same events does not have. Ember's option is the stateless
/// variant: a last level derived from the `item_id`, the same on every worker and replay.
public enum SemanticIDDisambiguation: String, Sendable, CaseIterable {
    /// L codes; colliding items share their semantic ID.
    case none
    /// L + 1 codes: the last is FNV-1a-64 of the `item_id`'s UTF-8 bytes modulo 65536.
    /// Two items with the same L codes still collide with probability 1/65536.
    case itemHash = "item_hash"

    /// Size of the extra level.
    public static let itemHashCodes = 65_536

    /// The extra code for an item, or nil when IDs are not disambiguated.
    public func extraCode(itemID: String) -> Int? {
        switch self {
        case .none: return nil
        case .itemHash:
            var hash: UInt64 = 0xCBF2_9CE4_8422_2325
            for byte in itemID.utf8 {
                hash ^= UInt64(byte)
                hash &*= 0x0000_0100_0000_01B3
            }
            return Int(hash % UInt64(Self.itemHashCodes))
        }
    }
}
