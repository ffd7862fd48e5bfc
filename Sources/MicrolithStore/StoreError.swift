/// An error raised by the store, with a stable ``code`` and a precise message.
///
/// The HTTP layer maps codes to statuses; nothing here knows about HTTP.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    /// A stable identifier of the kind of failure.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// A record does not match the schema (wrong type, missing required attribute, sealed table).
        public static let invalidRecord = Code("invalidRecord")
        /// The primary key in the body differs from the one in the path, or is not a valid key.
        public static let invalidID = Code("invalidID")
        /// No table of that name.
        public static let unknownTable = Code("unknownTable")
        /// A conditional write found another version than the one required.
        public static let versionMismatch = Code("versionMismatch")
        /// A create named a primary key that is already taken.
        public static let alreadyExists = Code("alreadyExists")
        /// The stored data cannot be opened with this schema (an incompatible change).
        public static let incompatibleSchema = Code("incompatibleSchema")
        /// The database file could not be opened or written.
        public static let storage = Code("storage")
        /// Another connection held the database's write lock for longer than the configured
        /// busy timeout (``StoreConfiguration/busyTimeoutMilliseconds``); the write did not happen
        /// and may be retried.
        public static let busy = Code("busy")
        /// The store is closed.
        public static let closed = Code("closed")
    }

    /// What kind of failure this is.
    public var code: Code
    /// What went wrong, for people.
    public var message: String
    /// The attribute concerned, when there is one.
    public var attribute: String?
    /// The underlying error, when there is one.
    public var underlying: (any Error)?

    public init(_ code: Code, _ message: String, attribute: String? = nil, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.attribute = attribute
        self.underlying = underlying
    }

    public var description: String { message }
}
