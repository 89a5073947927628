import Foundation

/// Reads and moves the seed's program pointers (ds_program_parameter.fromoutboxpointer).
enum ProgramPointer {
    static func get(_ db: Database, _ program: Int64) throws -> Int64 {
        try db.scalar("SELECT fromoutboxpointer FROM ds_program_parameter WHERE id = ?", [.integer(program)]).asInt64
            ?? 0
    }

    static func set(_ db: Database, _ program: Int64, _ value: Int64, status: String = "ok") throws {
        try db.execute(
            "UPDATE ds_program_parameter SET fromoutboxpointer = ?, status = ?, update_datetime = ? WHERE id = ?",
            [.integer(value), .text(status), .text(nowText()), .integer(program)])
    }
}
