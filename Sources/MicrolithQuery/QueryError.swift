/// A query that parsed but does not fit the table it is run against, reported by
/// ``Query/bound(to:schema:)``.
public struct QueryError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong, in words.
    public var message: String
    /// The character offset in the query string of the comparison at fault, when known
    /// (`select`, `sort` and programmatically built comparisons have none).
    public var offset: Int?

    public init(message: String, offset: Int? = nil) {
        self.message = message
        self.offset = offset
    }

    /// `query error at offset N: message`, or `query error: message` without an offset.
    public var description: String {
        if let offset { return "query error at offset \(offset): \(message)" }
        return "query error: \(message)"
    }
}
