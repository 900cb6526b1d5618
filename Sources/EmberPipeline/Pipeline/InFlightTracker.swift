import EmberKafka

/// Bookkeeping of the items between "polled" and "acknowledged", kept under the
/// pipeline's lock. Side effects (pause, resume, mark done) are decided here and
/// performed by the caller outside the lock.
///
/// Every admitted item gets a ticket holding its partition's generation. Revoking a
/// partition bumps the generation, so a ticket from before the revocation is stale:
/// its result is dropped and never marked done (the new owner re-processes it).
///
/// Backpressure has hysteresis: the input should pause once `pauseAt` items are in
/// flight and resume only when fewer than `resumeBelow` are. A revocation releases its
/// partitions' slots at once: their results will never be committed, and waiting for
/// them (a delivery stuck behind a broker outage, say) would keep the input paused
/// while the partitions come back to this member.
///
/// Fairness: pausing makes librdkafka drop what it prefetched, and after a resume the
/// fetched batches come back in the same partition order, so one partition's backlog
/// could refill the whole window every cycle and starve the others. So a partition
/// holding its fair share of the window (`pauseAt` over the partitions with work) is
/// held back on its own while another partition has a backlog, with the same
/// hysteresis scaled to the share.
struct InFlightTracker: Sendable {
    struct Ticket: Hashable, Sendable {
        var partition: KafkaTopicPartition
        var offset: KafkaOffset
        var generation: UInt64
    }

    let pauseAt: Int
    let resumeBelow: Int

    /// Items of current generations between admission and finish.
    private(set) var inFlight = 0
    /// Whether the input should be paused now.
    private(set) var wantsPause = false
    private var generations: [KafkaTopicPartition: UInt64] = [:]
    /// `inFlight` per partition, so a revocation can release exactly its slots.
    private var inFlightByPartition: [KafkaTopicPartition: Int] = [:]
    /// Partitions held back for fairness (paused on their own).
    private(set) var heldBack: Set<KafkaTopicPartition> = []

    init(pauseAt: Int, resumeBelow: Int) {
        self.pauseAt = max(1, pauseAt)
        self.resumeBelow = min(max(1, resumeBelow), self.pauseAt)
    }

    /// Admits a polled message.
    mutating func admit(_ partition: KafkaTopicPartition, offset: KafkaOffset) -> Ticket {
        inFlight += 1
        inFlightByPartition[partition, default: 0] += 1
        if inFlight >= pauseAt { wantsPause = true }
        return Ticket(partition: partition, offset: offset, generation: generations[partition, default: 0])
    }

    /// Updates `heldBack` given the partitions with messages not yet polled, and returns it.
    mutating func holdBack(backlogged: Set<KafkaTopicPartition>) -> Set<KafkaTopicPartition> {
        let busy = Set(inFlightByPartition.filter { $0.value > 0 }.keys)
        let active = backlogged.union(busy)
        // Rounded up, so the shares of all active partitions fill the window.
        let share = max(1, (pauseAt + active.count - 1) / max(1, active.count))
        let releaseBelow = max(1, share * resumeBelow / pauseAt)
        var held: Set<KafkaTopicPartition> = []
        for partition in active {
            let othersWaiting = backlogged.contains { $0 != partition }
            let count = inFlightByPartition[partition] ?? 0
            if othersWaiting && (count >= share || (heldBack.contains(partition) && count >= releaseBelow)) {
                held.insert(partition)
            }
        }
        heldBack = held
        return held
    }

    /// Whether the item's partition is still ours since it was admitted.
    func isCurrent(_ ticket: Ticket) -> Bool {
        generations[ticket.partition, default: 0] == ticket.generation
    }

    /// An item left the pipeline (acknowledged or dropped). Returns whether its offset
    /// may be marked done: false for a stale ticket.
    mutating func finish(_ ticket: Ticket) -> Bool {
        // A stale ticket's slot was released when its partition was revoked.
        guard isCurrent(ticket) else { return false }
        release(ticket.partition, count: 1)
        return true
    }

    /// Partitions were revoked or lost: tickets issued before now become stale and
    /// their slots are free.
    mutating func revoke(_ partitions: [KafkaTopicPartition]) {
        for partition in partitions {
            generations[partition, default: 0] += 1
            release(partition, count: inFlightByPartition[partition] ?? 0)
            heldBack.remove(partition)
        }
    }

    private mutating func release(_ partition: KafkaTopicPartition, count: Int) {
        guard count > 0 else { return }
        inFlight -= count
        inFlightByPartition[partition, default: 0] -= count
        if wantsPause && inFlight < resumeBelow { wantsPause = false }
    }
}
