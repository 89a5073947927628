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

/// Reads and moves the seed's program pointers (ds_program_parameter.fromoutboxpointer).
enum ProgramPointer {
    static func get(_ db: Database, _ program: Int64) throws -> Int64 {
        try db.scalar("SELECT fromoutboxpointer FROM ds_program_parameter WHERE id = ?", [.integer(program)]).asInt64 ?? 0
    }

    static func set(_ db: Database, _ program: Int64, _ value: Int64, status: String = "ok") throws {
        try db.execute("UPDATE ds_program_parameter SET fromoutboxpointer = ?, status = ?, update_datetime = ? WHERE id = ?",
                       [.integer(value), .text(status), .text(nowText()), .integer(program)])
    }
}
