/// A malformed query string, reported by ``QueryParser/parse(_:)``.
public struct QuerySyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The 0-based offset, in characters, of the problem in the raw (still percent-encoded) query string.
    public var offset: Int
    /// What is wrong, in words.
    public var message: String

    public init(offset: Int, message: String) {
        self.offset = offset
        self.message = message
    }

    /// `query syntax error at offset N: message`.
    public var description: String { "query syntax error at offset \(offset): \(message)" }
}
