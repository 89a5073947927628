import Foundation
import XCTest

@testable import DataJoin

/// The second thread ingest decodes a bundle on: items in order, the producer's error after
/// the items made before it, never more than the budget ahead (a large item is made only when
/// the consumer has let go of the one before it), and nothing of the producer left after cancel.
final class ReadAheadTests: XCTestCase {
    private struct Refused: Error, Equatable { var at: Int }

    /// Counts what the producer has made and the consumer has not yet let go of.
    private final class Alive: @unchecked Sendable {
        private let lock = NSLock()
        private var current = 0
        private(set) var peak = 0
        func add(_ n: Int) {
            lock.lock()
            current += n
            peak = max(peak, current)
            lock.unlock()
        }
    }

    /// Takes every item, each of which is its own cost, slower than the producer makes them.
    private func consume(_ ahead: ReadAhead<Int>, _ alive: Alive) throws {
        var held = 0
        while true {
            // Let go before asking: the producer may make the next item at once.
            alive.add(-held)
            guard let cost = try ahead.next() else { break }
            usleep(100)
            held = cost
        }
    }

    func testItemsArriveInOrderAtEveryBudget() throws {
        for budget in [1, 2, 3, 10, 1_000] {
            var i = 0
            let ahead = ReadAhead<Int>(budget: budget) { _ in
                defer { i += 1 }
                return i < 1_000 ? (i, 1) : nil
            }
            var got: [Int] = []
            while let x = try ahead.next() { got.append(x) }
            XCTAssertEqual(got, Array(0..<1_000), "budget \(budget)")
            XCTAssertNil(try ahead.next(), "budget \(budget): the end stays the end")
        }
    }

    /// Costs of 1 against budgets of size-1, size, size+1 and 3×size of a run of 4 items:
    /// alive at once (made, the one the consumer holds included) is never more than the budget.
    func testTheProducerStaysWithinTheBudget() throws {
        for budget in [3, 4, 5, 12] {
            let alive = Alive()
            var i = 0
            let ahead = ReadAhead<Int>(budget: budget) { _ in
                defer { i += 1 }
                guard i < 200 else { return nil }
                alive.add(1)
                return (i, 1)
            }
            var n = 0
            while try ahead.next() != nil {
                // Slower than the producer, so it runs into the budget.
                usleep(50)
                alive.add(-1)
                n += 1
            }
            XCTAssertEqual(n, 200)
            XCTAssertLessThanOrEqual(alive.peak, budget, "budget \(budget)")
        }
    }

    /// The 64 MiB case in small: an item over the budget is made only once the consumer asked for
    /// the item after the one before it, so two of them are never alive at once.
    func testAnItemOverTheBudgetWaitsForTheOneBeforeItToBeLetGo() throws {
        let alive = Alive()
        var i = 0
        let ahead = ReadAhead<Int>(budget: 10) { _ in
            defer { i += 1 }
            guard i < 20 else { return nil }
            let cost = i % 3 == 0 ? 64 : 1
            alive.add(cost)
            return (cost, cost)
        }
        try consume(ahead, alive)
        XCTAssertLessThan(alive.peak, 2 * 64, "two large items were alive at once")
    }

    /// A producer that knows an item's cost first (an import's next chunk) waits for it: an
    /// item that does not fit beside what is held is made only when nothing is held.
    func testAnAdmittedItemOverTheBudgetIsMadeOnlyWhenNothingIsHeld() throws {
        let alive = Alive()
        var i = 0
        let ahead = ReadAhead<Int>(budget: 10) { admission in
            defer { i += 1 }
            guard i < 20 else { return nil }
            let cost = i % 4 == 0 ? 64 : 3
            guard admission.wait(for: cost) else { return nil }
            alive.add(cost)
            return (cost, cost)
        }
        try consume(ahead, alive)
        XCTAssertEqual(alive.peak, 64, "a large item was made beside another")
    }

    func testTheProducersErrorComesAfterTheItemsBeforeIt() throws {
        var i = 0
        let ahead = ReadAhead<Int>(budget: 4) { _ in
            defer { i += 1 }
            if i == 7 { throw Refused(at: i) }
            return (i, 1)
        }
        var got: [Int] = []
        XCTAssertThrowsError(try { while let x = try ahead.next() { got.append(x) } }()) {
            XCTAssertEqual($0 as? Refused, Refused(at: 7))
        }
        XCTAssertEqual(got, Array(0..<7))
    }

    func testCancelEndsTheThreadAndReleasesTheProducer() throws {
        final class Token {}
        weak var weakToken: Token?
        var made = 0
        do {
            var token: Token? = Token()
            weakToken = token
            let ahead = ReadAhead<Int>(budget: 2) { [token] _ in
                _ = token
                made += 1
                return (made, 1)
            }
            token = nil
            XCTAssertEqual(try ahead.next(), 1)
            ahead.cancel()
            // The thread has ended within the budget, and the closure is gone with it.
            XCTAssertLessThanOrEqual(made, 1 + 2 + 1)
            XCTAssertNil(weakToken)
        }
    }

    func testDroppingItCancels() throws {
        final class Token {}
        weak var weakToken: Token?
        do {
            let token = Token()
            weakToken = token
            var ahead: ReadAhead<Int>? = ReadAhead<Int>(budget: 1) { [token] _ in
                _ = token
                return (0, 1)
            }
            XCTAssertEqual(try ahead?.next(), 0)
            ahead = nil
        }
        XCTAssertNil(weakToken)
    }
}
