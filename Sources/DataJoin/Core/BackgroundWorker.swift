import Foundation

/// Runs work on a second thread, item by item in order, while the caller prepares the next
/// item: export is CPU-bound, and before this it used one core (reading the outbox, encoding
/// and compressing, one after the other). At most `depth` items wait, so memory stays bounded.
/// The first error the work throws is kept and thrown to the caller at its next `submit` or
/// `finish`; the items after it are dropped. The thread holds the worker until `finish` or
/// `cancel` ends it: its owner calls one of them.
final class BackgroundWorker<Item> {
    private let condition = NSCondition()
    private var queue: [Item] = []
    private var closed = false
    private var running = true
    private var failure: Error?
    private let depth: Int

    /// Released by the thread before `finish` or `cancel` returns, so that a closure the
    /// caller passed `withoutActuallyEscaping` has not escaped.
    private var work: ((Item) throws -> Void)?

    init(depth: Int = 2, work: @escaping (Item) throws -> Void) {
        self.depth = depth
        self.work = work
        let thread = Thread { [condition = self.condition] in self.loop(condition: condition) }
        thread.name = "datajoin.worker"
        thread.start()
    }

    private func loop(condition: NSCondition) {
        while true {
            condition.lock()
            while queue.isEmpty && !closed { condition.wait() }
            if queue.isEmpty {
                work = nil
                running = false
                condition.broadcast()
                condition.unlock()
                return
            }
            let item = queue.removeFirst()
            let work = failure == nil ? self.work : nil
            condition.broadcast()
            condition.unlock()
            guard let work else { continue }
            do {
                try work(item)
            } catch {
                condition.lock()
                failure = error
                condition.broadcast()
                condition.unlock()
            }
        }
    }

    /// Hands an item over; waits while `depth` items are waiting.
    func submit(_ item: Item) throws {
        condition.lock()
        defer { condition.unlock() }
        while queue.count >= depth && failure == nil { condition.wait() }
        if let failure { throw failure }
        queue.append(item)
        condition.broadcast()
    }

    /// Waits until every item is done and the thread has ended; throws the first failure.
    func finish() throws {
        stop(dropping: false)
        condition.lock()
        defer { condition.unlock() }
        if let failure { throw failure }
    }

    /// Drops the items still waiting and waits until the thread has ended (work given up).
    func cancel() { stop(dropping: true) }

    private func stop(dropping: Bool) {
        condition.lock()
        if dropping { queue.removeAll() }
        closed = true
        condition.broadcast()
        while running { condition.wait() }
        condition.unlock()
    }
}
