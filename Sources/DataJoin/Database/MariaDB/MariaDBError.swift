import CMariaDB
import Foundation

/// A server error with its number and SQLSTATE; bound values are never part of the message.
public struct MariaDBError: Error, CustomStringConvertible {
    public let number: UInt32
    public let sqlState: String
    public let message: String

    public var code: Code { Code(rawValue: number) }

    /// Server and client error numbers by name (mysqld_error.h, errmsg.h): the core and the
    /// dialect match names, never raw numbers.
    public struct Code: RawRepresentable, Hashable, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }

        public static let duplicateEntry = Code(rawValue: UInt32(ER_DUP_ENTRY))
        public static let deadlock = Code(rawValue: UInt32(ER_LOCK_DEADLOCK))
        public static let lockWaitTimeout = Code(rawValue: UInt32(ER_LOCK_WAIT_TIMEOUT))
        /// InnoDB's "Record has changed since last read" under snapshot isolation.
        public static let recordChangedSinceStart = Code(rawValue: 1020)
        public static let diskFull = Code(rawValue: UInt32(ER_DISK_FULL))
        /// "The table is full": InnoDB's tablespace could not grow (a full disk).
        public static let tableFull = Code(rawValue: UInt32(ER_RECORD_FILE_FULL))
        public static let outOfResources = Code(rawValue: UInt32(ER_OUT_OF_RESOURCES))
        public static let readOnlyTransaction = Code(rawValue: UInt32(ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION))
        /// `--read-only` (a replica): ER_OPTION_PREVENTS_STATEMENT.
        public static let optionPreventsStatement = Code(rawValue: UInt32(ER_OPTION_PREVENTS_STATEMENT))
        public static let noSuchTable = Code(rawValue: UInt32(ER_NO_SUCH_TABLE))
        public static let illegalMixOfCollations = Code(rawValue: UInt32(ER_CANT_AGGREGATE_2COLLATIONS))
        public static let incorrectStringValue = Code(rawValue: UInt32(ER_TRUNCATED_WRONG_VALUE_FOR_FIELD))
        public static let outOfRange = Code(rawValue: UInt32(ER_WARN_DATA_OUT_OF_RANGE))
        public static let dataTooLong = Code(rawValue: UInt32(ER_DATA_TOO_LONG))
        public static let serverGone = Code(rawValue: UInt32(CR_SERVER_GONE_ERROR))
        public static let serverLost = Code(rawValue: UInt32(CR_SERVER_LOST))
        public static let connectionError = Code(rawValue: UInt32(CR_CONNECTION_ERROR))
        public static let serverLostExtended = Code(rawValue: 2055)
        public static let connectionKilled = Code(rawValue: 1927)
        public static let serverShutdown = Code(rawValue: UInt32(ER_SERVER_SHUTDOWN))
        public static let resourceLimit = Code(rawValue: UInt32(ER_USER_LIMIT_REACHED))
        /// `KILL QUERY`: the operator stopped the statement.
        public static let queryInterrupted = Code(rawValue: UInt32(ER_QUERY_INTERRUPTED))
        /// `max_statement_time` ran out.
        public static let statementTimeout = Code(rawValue: UInt32(ER_STATEMENT_TIMEOUT))
        /// A user without the right to a table, a column, a database or an action.
        public static let accessDenied: Set<Code> = [
            Code(rawValue: UInt32(ER_TABLEACCESS_DENIED_ERROR)), Code(rawValue: UInt32(ER_COLUMNACCESS_DENIED_ERROR)),
            Code(rawValue: UInt32(ER_DBACCESS_DENIED_ERROR)), Code(rawValue: UInt32(ER_SPECIFIC_ACCESS_DENIED_ERROR)),
            Code(rawValue: UInt32(ER_PROCACCESS_DENIED_ERROR)),
        ]
    }

    var isConnectionLost: Bool {
        [.serverGone, .serverLost, .connectionError, .serverLostExtended, .connectionKilled, .serverShutdown]
            .contains(code)
    }

    public var description: String { "MariaDB error \(number) (\(sqlState)): \(message)" }
}
