import Foundation

/// Runs a producer on a second thread, ahead of its consumer: ingest is CPU-bound, and before
/// this it used one core (decompressing and decoding a bundle, then writing its rows, one after
/// the other). The producer stays at most `budget` cost units ahead: an item counts from the
/// moment it is made until the consumer asks for the item after it, so a large item (a 64 MiB
/// change) is never read while another is still held. The first error the producer throws
/// reaches the consumer after every item made before it. The thread ends before `cancel`
/// returns, and `deinit` cancels: nothing of the producer outlives its owner.
final class ReadAhead<Item> {
    private final class State {
        let condition = NSCondition()
        var queue: [(item: Item, cost: Int)] = []
        /// The cost of the items made and not yet released by the consumer.
        var outstanding = 0
        var ended = false
        var cancelled = false
        var running = true
        var failure: Error?
        /// Released by the thread when it ends, with everything the closure captured.
        var produce: (() throws -> (Item, cost: Int)?)?
    }

    private let state = State()
    private let budget: Int
    /// The cost of the item the consumer holds, released when it asks for the next.
    private var held = 0

    init(budget: Int, produce: @escaping () throws -> (Item, cost: Int)?) {
        self.budget = budget
        state.produce = produce
        let thread = Thread { [state, budget] in Self.loop(state, budget: budget) }
        thread.name = "datajoin.read-ahead"
        thread.start()
    }

    deinit { cancel() }

    private static func loop(_ s: State, budget: Int) {
        while true {
            s.condition.lock()
            while s.outstanding >= budget && !s.cancelled { s.condition.wait() }
            let produce = s.cancelled ? nil : s.produce
            s.condition.unlock()
            var made: (Item, cost: Int)?
            var failure: Error?
            if let produce {
                do { made = try produce() } catch { failure = error }
            }
            s.condition.lock()
            if let made, !s.cancelled {
                s.queue.append((made.0, made.cost))
                s.outstanding += made.cost
                s.condition.broadcast()
                s.condition.unlock()
                continue
            }
            s.failure = failure
            s.ended = true
            s.running = false
            s.produce = nil
            if s.cancelled { s.queue.removeAll() }
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
