import Foundation

/// Where long-running work tells how far it got. The CLI draws a progress line on a terminal;
/// the library never prints.
public protocol Reporter: AnyObject {
    func progress(_ p: WorkProgress)
    func verbose(_ message: String)
}

/// How far a long run got: changes, bytes, and the totals when they are known (for an ETA).
public struct WorkProgress: Sendable {
    public var phase: String
    public var changes: Int64
    public var totalChanges: Int64?
    public var bytes: Int64 = 0
    public var totalBytes: Int64?
    /// The last report of the run: always drawn.
    public var final = false
}

public final class SilentReporter: Reporter {
    public init() {}
    public func progress(_ p: WorkProgress) {}
    public func verbose(_ message: String) {}
}
