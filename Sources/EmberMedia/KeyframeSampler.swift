/// Chooses which keyframes to decode so that up to `maxFrames` are spread over
/// the video, in one forward pass and without seeking (seeking over HTTP costs a
/// request each, and short videos are read whole anyway for their keyframe count).
///
/// - Duration known: the span `[start, start + duration)` is cut into `maxFrames`
///   equal slots and the first keyframe whose timestamp falls in a slot is decoded;
///   the other keyframes of that slot are dropped before the decoder. A slot
///   without a keyframe yields no frame, so a video with K < maxFrames keyframes
///   yields K frames, and one with a single keyframe yields one.
/// - Duration unknown (or a packet without timestamp): every keyframe is taken
///   until `2 × maxFrames` are held, then every other one is dropped and only every
///   second later keyframe is taken (and so on, doubling), which keeps memory
///   bounded and the survivors evenly spaced; `finish` picks `maxFrames` of them
///   evenly by index, first and last included.
struct KeyframeSampler {
    let maxFrames: Int
    let start: Double
    let duration: Double?
    private var lastSlot = -1
    private var stride = 1
    private var seen = 0

    init(maxFrames: Int, start: Double, duration: Double?) {
        self.maxFrames = max(0, maxFrames)
        self.start = start
        self.duration = duration.flatMap { $0 > 0 && $0.isFinite ? $0 : nil }
    }

    /// Whether the keyframe at `seconds` should be decoded.
    mutating func wants(_ seconds: Double?) -> Bool {
        guard maxFrames > 0 else { return false }
        if let duration, let seconds {
            let position = (seconds - start) / duration * Double(maxFrames)
            let slot = min(maxFrames - 1, max(0, Int(position.rounded(.down))))
            guard slot > lastSlot else { return false }
            lastSlot = slot
            return true
        }
        defer { seen += 1 }
        return seen % stride == 0
    }

    /// Called with the frames kept so far in the unknown-duration mode: thins them
    /// to every other one when more than `2 × maxFrames` are held.
    mutating func thin<T>(_ kept: inout [T]) {
        guard kept.count > 2 * maxFrames else { return }
        kept = kept.enumerated().filter { $0.offset % 2 == 0 }.map(\.element)
        stride *= 2
    }

    /// The final selection: at most `maxFrames`, evenly spaced, first and last kept.
    func finish<T>(_ kept: [T]) -> [T] {
        guard kept.count > maxFrames else { return kept }
        guard maxFrames > 1 else { return Array(kept.prefix(maxFrames)) }
        return (0..<maxFrames).map { kept[($0 * (kept.count - 1) + (maxFrames - 1) / 2) / (maxFrames - 1)] }
    }
}
