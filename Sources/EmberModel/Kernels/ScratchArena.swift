import Foundation

/// A worker's scratch memory for forward passes (llm.c style): one allocation carved
/// into the buffers a pass needs. `begin(floats:)` sizes it for the coming pass; it only
/// reallocates when a pass needs more than any before, so steady-state forward passes
/// allocate nothing. Not thread-safe: one arena per concurrent caller (`ArenaPool`).
public final class ScratchArena {
    private var storage: UnsafeMutablePointer<Float>
    /// Floats available.
    public private(set) var capacity: Int
    private var used = 0
    /// Times the arena had to grow after creation.
    public private(set) var growths = 0

    public init(floats: Int = 0) {
        capacity = max(floats, 1)
        storage = .allocate(capacity: capacity)
    }

    deinit { storage.deallocate() }

    public var megabytes: Double { Double(capacity * 4) / 1_048_576 }

    /// Starts a pass that will carve at most `floats` floats; earlier buffers become invalid.
    func begin(floats: Int) {
        used = 0
        if floats > capacity {
            storage.deallocate()
            capacity = floats
            storage = .allocate(capacity: capacity)
            growths += 1
        }
    }

    /// The next `count` floats (uninitialized; every kernel writes before it reads).
    func carve(_ count: Int) -> UnsafeMutablePointer<Float> {
        precondition(used + count <= capacity, "scratch plan too small: internal error")
        let pointer = storage + used
        used += count
        return pointer
    }
}

/// Arenas for concurrent `embed` calls: take one, use it, give it back.
final class ArenaPool: @unchecked Sendable {
    private let lock = NSLock()
    private var free: [ScratchArena] = []
    private let initialFloats: Int

    init(initialFloats: Int) {
        self.initialFloats = initialFloats
        free.append(ScratchArena(floats: initialFloats))
    }

    func withArena<T>(_ body: (ScratchArena) throws -> T) rethrows -> T {
        let arena = lock.withLock { free.popLast() } ?? ScratchArena(floats: initialFloats)
        defer { lock.withLock { free.append(arena) } }
        return try body(arena)
    }
}
