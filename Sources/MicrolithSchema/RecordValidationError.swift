/// Why a record does not fit its table's schema.
public struct RecordValidationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The path of the offending attribute: `price`, `address.city` for a nested attribute,
    /// `tags[2]` for a list element, `lines[0].qty` for both.
    public var attribute: String
    /// A sentence explaining the problem, naming the attribute,
    /// such as `attribute 'price' must be a Float (number), got string`.
    public var message: String

    /// An error about `attribute`.
    public init(attribute: String, message: String) {
        self.attribute = attribute
        self.message = message
    }

    /// The ``message``.
    public var description: String { message }
}
