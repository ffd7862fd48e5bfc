import MicrolithSchema

/// Parses `lines` joined with newlines and returns the error, or `nil` when the schema is valid.
func schemaError(_ lines: [String], file: String = "schema.graphql") -> SchemaError? {
    do {
        _ = try SchemaParser.parse(lines.joined(separator: "\n"), file: file)
        return nil
    } catch {
        return error
    }
}

/// Parses `lines` joined with newlines.
func parseSchema(_ lines: [String], file: String = "schema.graphql") throws -> Schema {
    try SchemaParser.parse(lines.joined(separator: "\n"), file: file)
}
