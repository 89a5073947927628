import Foundation

/// Where long-running work tells how far it got. The CLI draws a progress line on a terminal;
/// the library never prints.
public protocol Reporter: AnyObject {
    func progress(_ p: WorkProgress)
    func verbose(_ message: String)
    /// What the operator must hear of whatever the verbosity: a move to a new epoch.
    func notice(_ message: String)
}

extension Reporter {
    public func notice(_ message: String) {}
}

/// Keeps the notices (`watch` writes them to its log).
public final class NoticeCollector: Reporter {
    public private(set) var notices: [String] = []
    public init() {}
    public func progress(_ p: WorkProgress) {}
    public func verbose(_ message: String) {}
    public func notice(_ message: String) { notices.append(message) }
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
