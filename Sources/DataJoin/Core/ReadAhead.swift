import Foundation

/// Runs a producer on a second thread, ahead of its consumer: ingest and import are CPU-bound,
/// and before this they used one core (decoding, then writing, one after the other). The
/// producer stays at most `budget` cost units ahead: an item counts from the moment it is made
/// until the consumer asks for the item after it, so a large item (a 64 MiB change) is never
/// read while another is still held. A producer that knows an item's cost before making it
/// asks `Admission.wait(for:)` first: an item over the budget is then made only when nothing
/// is held. The first error the producer throws reaches the consumer after every item made
/// before it. The thread, and everything its closure holds, is gone before `cancel` returns,
/// and `deinit` cancels.
final class ReadAhead<Item> {
    fileprivate final class State {
        let condition = NSCondition()
        let budget: Int
        var queue: [(item: Item, cost: Int)] = []
        /// The cost of the items made and not yet released by the consumer.
        var outstanding = 0
        var cancelled = false
        var running = true
        var failure: Error?
        /// Released by the thread when it ends, with everything the closure captured.
        var produce: ((Admission) throws -> (Item, cost: Int)?)?

        init(budget: Int) { self.budget = budget }
    }

    /// What the producer may wait on before it makes an item whose cost it knows.
    struct Admission {
        fileprivate let state: State

        /// Waits until an item of `cost` fits beside what is held, or nothing is held; false
        /// when the reading ahead was cancelled (make nothing then).
        func wait(for cost: Int) -> Bool {
            let s = state
            s.condition.lock()
            defer { s.condition.unlock() }
            while s.outstanding > 0 && s.outstanding + cost > s.budget && !s.cancelled { s.condition.wait() }
            return !s.cancelled
        }
    }

    private let state: State
    /// The cost of the item the consumer holds, released when it asks for the next.
    private var held = 0

    init(budget: Int, produce: @escaping (Admission) throws -> (Item, cost: Int)?) {
        state = State(budget: budget)
        state.produce = produce
        let thread = Thread { [state] in Self.loop(state) }
        thread.name = "datajoin.read-ahead"
        thread.start()
    }

    deinit { cancel() }

    private static func loop(_ s: State) {
        while true {
            s.condition.lock()
            while s.outstanding >= s.budget && !s.cancelled { s.condition.wait() }
            var produce = s.cancelled ? nil : s.produce
            s.condition.unlock()
            var made: (Item, cost: Int)?
            var failure: Error?
            if let p = produce {
                do { made = try p(Admission(state: s)) } catch { failure = error }
            }
            // Let go here, not at the return: `cancel` may return as soon as `running` is false.
            produce = nil
            s.condition.lock()
            if let item = made, !s.cancelled {
                made = nil
                s.queue.append((item.0, item.cost))
                s.outstanding += item.cost
                s.condition.broadcast()
                s.condition.unlock()
                continue
            }
            made = nil
            s.failure = failure
            s.produce = nil
            if s.cancelled { s.queue.removeAll() }
            s.running = false
            s.condition.broadcast()
            s.condition.unlock()
            return
        }
    }

    /// The next item, nil after the last; throws the producer's error in its place.
    func next() throws -> Item? {
        let s = state
        s.condition.lock()
        defer { s.condition.unlock() }
        s.outstanding -= held
        held = 0
        s.condition.broadcast()
        while s.queue.isEmpty && s.running { s.condition.wait() }
        if !s.queue.isEmpty {
            // Moved out of the queue: the consumer holds the only reference to the item.
            let (item, cost) = s.queue.removeFirst()
            held = cost
            return item
        }
        if let failure = s.failure { throw failure }
        return nil
    }

    /// Stops the producer after the item it is making and waits until its thread has ended.
    func cancel() {
        let s = state
        s.condition.lock()
        s.cancelled = true
        s.condition.broadcast()
        while s.running { s.condition.wait() }
        s.condition.unlock()
    }
}
