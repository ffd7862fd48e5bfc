import Foundation
import GraphQL

/// Reads a `schema.graphql` text into a validated ``Schema``.
///
/// The text is parsed as GraphQL SDL, then checked against Microlith's rules: object types with
/// `@table` become tables, other object types become nested types, attribute types and
/// directives must be known, each table needs a primary key, relationships must point at
/// declared attributes. The first problem found is thrown as a ``SchemaError`` carrying the
/// file, line and column it was found at.
///
/// Supported definitions: `type` (with `@table`, `@export`, `@sealed`, `@index`), `enum` (its attributes
/// hold strings), `scalar` for the built-in scalar names (ignored), and `directive` declarations
/// of Microlith's own directives (ignored). Everything else is refused with
/// ``SchemaError/Code/unsupported``.
public enum SchemaParser {
    /// The scalar type names an attribute may use, besides object and enum types.
    public static let builtinScalarNames: [String] = ["ID", "String", "Int", "Long", "Float", "Boolean", "Date", "Any"]

    /// The directives Microlith understands, without the `@`.
    public static let knownDirectiveNames: [String] = [
        "table", "export", "sealed", "index", "primaryKey", "indexed", "createdTime", "updatedTime", "relationship",
    ]

    /// Parses and validates the schema text `source`; `file` is used in error locations only.
    ///
    /// A text that holds only whitespace and comments is an empty schema.
    public static func parse(_ source: String, file: String) throws(SchemaError) -> Schema {
        let lines = SourceLines(text: source, file: file)
        if lines.isBlank { return Schema(tables: [], nestedTypes: [:]) }
        let document: Document
        do {
            document = try GraphQL.parse(source: Source(body: source, name: file))
        } catch let error as GraphQLError {
            throw syntaxError(error, lines: lines)
        } catch {
            throw SchemaError(code: .syntax, location: lines.location(ofOffset: 0), message: "\(error)")
        }
        var builder = SchemaBuilder(lines: lines)
        return try builder.build(document)
    }

    /// Reads the file at `path` (UTF-8) and parses it with ``parse(_:file:)``, using `path` in
    /// error locations.
    ///
    /// A file that is missing or cannot be read throws ``SchemaError/Code/unreadableFile`` at line 1, column 1.
    public static func parse(contentsOfFile path: String) throws(SchemaError) -> Schema {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            let reason = FileManager.default.fileExists(atPath: path) ? "cannot be read" : "does not exist"
            throw SchemaError(
                code: .unreadableFile,
                location: SourceLocation(file: path, line: 1, column: 1),
                message: "schema file '\(path)' \(reason)"
            )
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw SchemaError(
                code: .unreadableFile,
                location: SourceLocation(file: path, line: 1, column: 1),
                message: "schema file '\(path)' is not valid UTF-8"
            )
        }
        return try parse(text, file: path)
    }

    /// Turns the GraphQL package's syntax error into a ``SchemaError`` at the same place, keeping
    /// only its one-line description (the package prefixes "Syntax Error name (l:c)" and appends
    /// a source excerpt).
    private static func syntaxError(_ error: GraphQLError, lines: SourceLines) -> SchemaError {
        let location: SourceLocation
        if let offset = error.positions.first {
            location = lines.location(ofOffset: offset)
        } else if let graphQLLocation = error.locations.first {
            location = SourceLocation(file: lines.file, line: graphQLLocation.line, column: graphQLLocation.column)
        } else {
            location = lines.location(ofOffset: 0)
        }
        var message = error.message
        if let range = message.range(of: "\n\n") { message = String(message[..<range.lowerBound]) }
        if message.hasPrefix("Syntax Error "), let range = message.range(of: ") ") {
            message = String(message[range.upperBound...])
        }
        return SchemaError(code: .syntax, location: location, message: "syntax error: \(message)")
    }
}
