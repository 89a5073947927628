import Foundation
import XCTest

@testable import DataJoin

/// The second thread export encodes and compresses on: items in order, the first error back to
/// the caller, nothing done after it, and the caller's closure released when it returns.
final class BackgroundWorkerTests: XCTestCase {
    private struct Refused: Error, Equatable { var item: Int }

    func testItemsAreDoneInOrderAtEveryQueueDepth() throws {
        for depth in [1, 2, 3, 6] {
            var done: [Int] = []
            let worker = BackgroundWorker<Int>(depth: depth) { done.append($0) }
            for i in 0..<1_000 { try worker.submit(i) }
            try worker.finish()
            XCTAssertEqual(done, Array(0..<1_000), "depth \(depth)")
        }
    }

    func testTheFirstErrorReachesTheCallerAndNothingAfterItIsDone() throws {
        let lock = NSLock()
        var done: [Int] = []
        let worker = BackgroundWorker<Int>(depth: 2) { i in
            if i == 5 || i == 7 { throw Refused(item: i) }
            lock.lock()
            done.append(i)
            lock.unlock()
        }
        var thrownAt: Int?
        for i in 0..<100 {
            do { try worker.submit(i) } catch let e as Refused {
                XCTAssertEqual(e, Refused(item: 5))
                thrownAt = i
                break
            }
        }
        XCTAssertThrowsError(try worker.finish()) { XCTAssertEqual($0 as? Refused, Refused(item: 5)) }
        // The caller learns it within the queue's depth (plus the item being done).
        XCTAssertNotNil(thrownAt)
        XCTAssertLessThanOrEqual(thrownAt ?? 100, 5 + 2 + 1)
        XCTAssertEqual(done, [0, 1, 2, 3, 4])
    }

    func testAnErrorInTheLastItemIsThrownByFinish() throws {
        let worker = BackgroundWorker<Int>(depth: 2) { i in if i == 9 { throw Refused(item: i) } }
        for i in 0..<10 { try worker.submit(i) }
        XCTAssertThrowsError(try worker.finish()) { XCTAssertEqual($0 as? Refused, Refused(item: 9)) }
    }

    func testCancelDropsWhatWaitsAndReleasesTheWork() throws {
        let started = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        var done: [Int] = []
        final class Token {}
        weak var weakToken: Token?
        do {
            var token: Token? = Token()
            weakToken = token
            let worker = BackgroundWorker<Int>(depth: 3) { [token] i in
                _ = token
                if i == 0 {
                    started.signal()
                    release.wait()
                }
                done.append(i)
            }
            token = nil
            try worker.submit(0)
            started.wait()
            for i in 1...3 { try worker.submit(i) }
            release.signal()
            worker.cancel()
            // The item being done when cancel came finishes; the waiting ones are dropped
            // (or some of them done, if the thread took them first): never out of order.
            XCTAssertEqual(done, Array(0..<done.count))
            XCTAssertFalse(done.isEmpty)
            // Released by cancel itself, while the worker is still held here.
            XCTAssertNil(weakToken, "the work closure is released before cancel returns")
            withExtendedLifetime(worker) {}
        }
    }

    func testFinishReleasesTheWorkWhileTheWorkerIsStillHeld() throws {
        final class Token {}
        weak var weakToken: Token?
        var token: Token? = Token()
        weakToken = token
        let worker = BackgroundWorker<Int> { [token] _ in _ = token }
        token = nil
        try worker.submit(1)
        try worker.finish()
        XCTAssertNil(weakToken, "the work closure is released before finish returns")
        withExtendedLifetime(worker) {}
    }

    /// Export hands a closure it was given, not escaping, to the thread: it must be released
    /// before the export's closure returns, or Swift stops the program.
    func testAClosureLentWithoutEscapingIsReleasedByFinish() throws {
        func run(_ body: (Int) throws -> Void) throws {
            try withoutActuallyEscaping(body) { body in
                let worker = BackgroundWorker<Int> { try body($0) }
                defer { worker.cancel() }
                for i in 0..<50 { try worker.submit(i) }
                try worker.finish()
            }
        }
        var sum = 0
        try run { sum += $0 }
        XCTAssertEqual(sum, 49 * 50 / 2)
        XCTAssertThrowsError(try run { if $0 == 3 { throw Refused(item: 3) } })
    }
}
