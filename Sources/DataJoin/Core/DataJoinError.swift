import Foundation

/// Every failure DataJoin reports: a code for scripts, and a one-line message that says what
/// failed and what to do. Messages never contain passwords or bound values.
public struct DataJoinError: Error, CustomStringConvertible, LocalizedError, Equatable {
    public enum Code: String, Sendable {
        case usage
        case badURL
        case connection
        case sql
        case notInitialized
        case alreadyInitialized
        case noSuchTable
        case noPrimaryKey
        case alreadyTracked
        case notTracked
        /// A tracked table changed since `track` in a way its capture does not follow.
        case captureDrift
        case io
        /// A database, file or folder named by the user is not there (or is not a node yet).
        case noInput
        /// Not allowed: a read-only database, a sender that is not trusted.
        case permission
        /// Input that is not what it claims to be (a file that is no database).
        case dataError
        case badBundle
        /// The file ends early: perhaps still being copied.
        case truncated
        case untrusted
        /// An encrypted bundle for other nodes (a shared drop folder): left where it is.
        case notForThisNode
        /// An encrypted bundle for other nodes only, found in a shared drop folder: theirs, left.
        case forOtherNodes
        /// The node's own setup does not allow it yet (no trusted peer to encrypt to): exit 1, not
        /// a usage error (found from outside: scripts told to fix their arguments).
        case needsSetup
        /// A node a newer DataJoin upgraded: an older binary must not write it (exit 1).
        case newerNode
        case locked
        case busy
        case internalError
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
    public var errorDescription: String? { message }

    static func sql(_ message: String) -> DataJoinError { DataJoinError(.sql, message) }
    static func io(_ message: String) -> DataJoinError { DataJoinError(.io, message) }
    static func bundle(_ message: String) -> DataJoinError { DataJoinError(.badBundle, message) }
}
