/// An error found while reading `schema.graphql`: a syntax error or a schema rule that was broken.
///
/// The ``code`` is stable and meant for programs (tests, tooling); the ``message`` is meant for
/// people and may be reworded. ``description`` renders the error the way compilers do:
/// `file:line:column: error: message`.
public struct SchemaError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A stable identifier of the kind of schema error.
    ///
    /// Compare with the predefined values (`error.code == .unknownType`) or with a string
    /// (`error.code == "unknownType"`).
    public struct Code: RawRepresentable, Sendable, Hashable, ExpressibleByStringLiteral, CustomStringConvertible {
        /// The stable string form of the code, such as `"unknownType"`.
        public let rawValue: String

        /// A code with the given string form.
        public init(rawValue: String) {
            self.rawValue = rawValue
        }

        /// A code written as a string literal.
        public init(stringLiteral value: String) {
            self.rawValue = value
        }

        /// The string form of the code.
        public var description: String { rawValue }

        /// The text is not valid GraphQL.
        public static let syntax: Code = "syntax"
        /// The schema file could not be read.
        public static let unreadableFile: Code = "unreadableFile"
        /// A GraphQL feature Microlith does not support (interfaces, unions, inputs, custom scalars, field arguments, ...).
        public static let unsupported: Code = "unsupported"
        /// An attribute's type names no built-in scalar, enum or object type.
        public static let unknownType: Code = "unknownType"
        /// Two types share a name, or a type reuses a built-in scalar name.
        public static let duplicateType: Code = "duplicateType"
        /// Two tables of one database share a table name.
        public static let duplicateTable: Code = "duplicateTable"
        /// Two tables are exported under the same name.
        public static let duplicateExport: Code = "duplicateExport"
        /// A type declares the same attribute twice.
        public static let duplicateAttribute: Code = "duplicateAttribute"
        /// A directive Microlith does not know.
        public static let unknownDirective: Code = "unknownDirective"
        /// A known directive used in the wrong place, repeated, or with missing, unknown or invalid arguments.
        public static let badDirective: Code = "badDirective"
        /// A table without a `@primaryKey` attribute and without an attribute named `id`.
        public static let missingPrimaryKey: Code = "missingPrimaryKey"
        /// A table with more than one `@primaryKey` attribute.
        public static let duplicatePrimaryKey: Code = "duplicatePrimaryKey"
        /// A primary key of a type other than `ID`, `String`, `Int` or `Long`, or a list.
        public static let badPrimaryKey: Code = "badPrimaryKey"
        /// A `@relationship` that does not fit the schema, or a table type used without `@relationship`.
        public static let badRelationship: Code = "badRelationship"
    }

    /// What kind of error this is.
    public var code: Code
    /// Where the error was found.
    public var location: SourceLocation
    /// A sentence explaining the error.
    public var message: String

    /// An error of kind `code` at `location`.
    public init(code: Code, location: SourceLocation, message: String) {
        self.code = code
        self.location = location
        self.message = message
    }

    /// `file:line:column: error: message`.
    public var description: String { "\(location): error: \(message)" }
}
