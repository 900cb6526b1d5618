// Byte-level BPE as Hugging Face `tokenizers`' `BPE` model applies it to one pre-token
// (`Word::merge_all`, no dropout, no unknown token): start from one symbol per byte, then
// repeatedly merge the adjacent pair with the lowest merge rank, the leftmost one on ties.
import Foundation

/// The merge table of a byte-level BPE vocabulary and the per-word merge loop.
struct ByteLevelBPE: Sendable {
    /// The merged token and its priority (the line of the merge in the file; lower first).
    struct Merge: Sendable {
        let rank: Int32
        let id: Int32
    }

    /// (left id << 32 | right id) → merge. A pair listed twice keeps its last line, as
    /// `tokenizers` builds its map.
    let merges: [UInt64: Merge]
    /// The id of each single byte's token (all 256 are in a byte-level vocabulary).
    let idOfByte: [Int32]
    /// `ignore_merges`: a word that is a token as a whole is that token, merges unseen.
    let wholeWords: [[UInt8]: Int32]?
    /// Words up to this many bytes are cached (as `tokenizers`' `MAX_LENGTH`).
    static let cachedWordBytes = 256
    private let cache = WordCache(capacity: 10_000)

    /// Checks the table as `tokenizers` does on load: both halves of every merge and their
    /// concatenation are vocabulary tokens. `key` names the merges in errors.
    init(vocabulary: [String: Int32], merges pairs: [(String, String)], ignoreMerges: Bool, key: String) throws(ModelError) {
        var idOfByte = [Int32](repeating: -1, count: 256)
        for byte in 0..<256 {
            let token = String(ByteLevel.characterOfByte[byte])
            guard let id = vocabulary[token] else {
                throw ModelError.invalidConfig(key: "\(key).vocab", reason: "no token for byte \(byte) (\"\(token)\"): not a byte-level vocabulary")
            }
            idOfByte[byte] = id
        }
        var merges: [UInt64: Merge] = [:]
        merges.reserveCapacity(pairs.count)
        for (rank, (left, right)) in pairs.enumerated() {
            guard let a = vocabulary[left], let b = vocabulary[right] else {
                let missing = vocabulary[left] == nil ? left : right
                throw ModelError.invalidConfig(key: "\(key).merges[\(rank)]", reason: "\"\(missing)\" is not in the vocabulary")
            }
            guard let merged = vocabulary[left + right] else {
                throw ModelError.invalidConfig(key: "\(key).merges[\(rank)]", reason: "the merged token \"\(left + right)\" is not in the vocabulary")
            }
            merges[Self.pair(a, b)] = Merge(rank: Int32(rank), id: merged)
        }
        self.merges = merges
        self.idOfByte = idOfByte
        if ignoreMerges {
            var whole: [[UInt8]: Int32] = [:]
            for (token, id) in vocabulary { whole[ByteLevel.bytes(ofToken: token)] = id }
            wholeWords = whole
        } else {
            wholeWords = nil
        }
    }

    @inline(__always) static func pair(_ a: Int32, _ b: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))
    }

    /// Appends the token ids of one pre-token (its raw UTF-8 bytes) to `ids`.
    func encode(word: ArraySlice<UInt8>, into ids: inout [Int32]) {
        if word.count == 1 {
            ids.append(idOfByte[Int(word[word.startIndex])])
            return
        }
        if let wholeWords, let id = wholeWords[Array(word)] {
            ids.append(id)
            return
        }
        let cacheable = word.count <= Self.cachedWordBytes
        let key = cacheable ? Array(word) : []
        if cacheable, let hit = cache[key] {
            ids.append(contentsOf: hit)
            return
        }
        var symbols = word.map { idOfByte[Int($0)] }
        if symbols.count <= 64 { mergeByScan(&symbols) } else { mergeByHeap(&symbols) }
        if cacheable { cache[key] = symbols }
        ids.append(contentsOf: symbols)
    }

    /// Short words: keep each adjacent pair's merge, scan for the best, update the two
    /// pairs around a merge. O(n²) scans, fastest for the few symbols of a typical word.
    func mergeByScan(_ symbols: inout [Int32]) {
        guard symbols.count > 1 else { return }
        let none = Merge(rank: .max, id: -1)
        var pairs = (0..<symbols.count - 1).map { merges[Self.pair(symbols[$0], symbols[$0 + 1])] ?? none }
        while true {
            var best = -1
            var bestRank = Int32.max
            for (k, merge) in pairs.enumerated() where merge.rank < bestRank {
                best = k
                bestRank = merge.rank
            }
            if best < 0 { return }
            symbols[best] = pairs[best].id
            symbols.remove(at: best + 1)
            pairs.remove(at: best)
            if best > 0 { pairs[best - 1] = merges[Self.pair(symbols[best - 1], symbols[best])] ?? none }
            if best < pairs.count { pairs[best] = merges[Self.pair(symbols[best], symbols[best + 1])] ?? none }
        }
    }

    /// Long words (a run of thousands of letters must not take quadratic time): a min-heap of
    /// (rank, position) over a linked list of symbols, stale entries skipped when popped —
    /// the `tokenizers` algorithm. Same order as `mergeByScan`: lowest rank, then leftmost.
    func mergeByHeap(_ symbols: inout [Int32]) {
        let n = symbols.count
        guard n > 1 else { return }
        var id = symbols
        var next = Array(1...n)  // n: no next symbol
        var previous = Array(-1..<(n - 1))
        var alive = [Bool](repeating: true, count: n)
        var heap = MinHeap()
        func push(_ position: Int) {
            let right = next[position]
            guard right < n, let merge = merges[Self.pair(id[position], id[right])] else { return }
            heap.push(UInt64(UInt32(merge.rank)) << 32 | UInt64(position))
        }
        for position in 0..<(n - 1) { push(position) }
        while let top = heap.pop() {
            let position = Int(top & 0xFFFF_FFFF)
            let rank = Int32(top >> 32)
            let right = next[position]
            guard alive[position], right < n, let merge = merges[Self.pair(id[position], id[right])], merge.rank == rank else { continue }
            id[position] = merge.id
            alive[right] = false
            next[position] = next[right]
            if next[right] < n { previous[next[right]] = position }
            if previous[position] >= 0 { push(previous[position]) }
            push(position)
        }
        symbols = (0..<n).filter { alive[$0] }.map { id[$0] }
    }
}

/// A binary min-heap of packed (rank << 32 | position) keys.
private struct MinHeap {
    private var items: [UInt64] = []

    mutating func push(_ item: UInt64) {
        items.append(item)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child] < items[parent] else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> UInt64? {
        guard let last = items.popLast() else { return nil }
        guard !items.isEmpty else { return last }
        let top = items[0]
        items[0] = last
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < items.count, items[left] < items[smallest] { smallest = left }
            if right < items.count, items[right] < items[smallest] { smallest = right }
            if smallest == parent { return top }
            items.swapAt(parent, smallest)
            parent = smallest
        }
    }
}

/// Word → ids, shared by the copies of a tokenizer and safe across threads. Emptied when
/// full, so a long-running worker follows the words it currently sees.
private final class WordCache: @unchecked Sendable {
    private let lock = NSLock()
    private var words: [[UInt8]: [Int32]] = [:]
    private let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    subscript(word: [UInt8]) -> [Int32]? {
        get { lock.withLock { words[word] } }
        set {
            lock.withLock {
                if words.count >= capacity { words.removeAll(keepingCapacity: true) }
                words[word] = newValue
            }
        }
    }
}
