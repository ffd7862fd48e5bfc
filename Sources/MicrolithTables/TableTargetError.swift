/// Why a URL path or topic names no table target; each door turns it into its own answer
/// (HTTP: a problem with ``status`` and ``code``; MQTT: reason code 0x90, topic name invalid).
public struct TableTargetError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kind of failure.
    public enum Kind: Sendable, Equatable {
        /// The path names no table at all (`/`, `//x`).
        case noTable
        /// The first segment is not an exported table's name.
        case unknownTable
        /// The key or prefix has a malformed percent-escape, or escapes that are not UTF-8.
        case badEscape
        /// The key is not one the table's primary key accepts.
        case invalidID
        /// The prefix can match no key.
        case invalidPrefix
    }

    /// The kind of failure.
    public let kind: Kind
    /// What is wrong, for people.
    public let detail: String
    /// The table's name as sent, when there is one.
    public let tableName: String?

    /// The HTTP status that answers it: 404 when no table is named, 400 otherwise.
    public var status: Int {
        switch kind {
        case .noTable, .unknownTable: return 404
        case .badEscape, .invalidID, .invalidPrefix: return 400
        }
    }

    /// The stable machine-readable name of the failure: `notFound` or `invalidID`.
    public var code: String {
        switch kind {
        case .noTable, .unknownTable: return "notFound"
        case .badEscape, .invalidID, .invalidPrefix: return "invalidID"
        }
    }

    public var description: String { detail }
}
