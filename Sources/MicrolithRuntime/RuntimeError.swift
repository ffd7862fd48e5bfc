/// A problem that stops the runtime from starting: bad configuration, schema, seed data or store.
public struct RuntimeError: Error, Sendable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}
