import MicrolithSchema

/// What an attribute path names in a schema.
enum ResolvedPath {
    /// A declared attribute: the one the last path segment names.
    case attribute(AttributeDefinition)
    /// An attribute no schema type declares (in an unsealed table or nested type, or below an `Any`
    /// attribute): it may hold any JSON value. `unknown` names the first segment that an open table
    /// or type does not declare (with what it does declare); it is nil below an `Any` attribute,
    /// where nothing is declared.
    case undeclared(unknown: String?)
}

/// Follows attribute paths through relationships and nested object types.
struct SchemaPathResolver {
    let schema: Schema

    /// A table or nested type: something whose attributes a path segment names.
    struct Container {
        var kind: String
        var name: String
        var isSealed: Bool
        var attributes: [AttributeDefinition]

        init(_ table: TableDefinition) {
            kind = "table"
            name = table.name
            isSealed = table.isSealed
            attributes = table.attributes
        }

        init(_ type: NestedTypeDefinition) {
            kind = "type"
            name = type.name
            isSealed = type.isSealed
            attributes = type.attributes
        }

        func attribute(_ name: String) -> AttributeDefinition? {
            attributes.first { $0.name == name }
        }

        /// The declared attribute names, comma-separated.
        var declaredNames: String {
            attributes.isEmpty ? "none" : attributes.map(\.name).joined(separator: ", ")
        }

        /// `its attributes are a, b, c`.
        var declared: String {
            "its attributes are \(declaredNames)"
        }
    }

    /// The table a relationship attribute points at.
    func relatedTable(of attribute: AttributeDefinition) -> TableDefinition? {
        guard attribute.relationship != nil, case .object(let typeName) = attribute.type.elementType else { return nil }
        return schema.table(typeName: typeName)
    }

    /// Resolves `path` starting at `table`.
    ///
    /// Throws when a segment is not declared in a sealed table or type, when a non-final segment is a
    /// scalar or list of scalars, or when a relationship does not name a table.
    func resolve(_ path: [String], in table: TableDefinition, offset: Int?) throws(QueryError) -> ResolvedPath {
        var container = Container(table)
        for (i, segment) in path.enumerated() {
            guard let attribute = container.attribute(segment) else {
                if container.isSealed {
                    throw QueryError(
                        message: "unknown attribute '\(segment)' in sealed \(container.kind) '\(container.name)'; \(container.declared)",
                        offset: offset)
                }
                return .undeclared(unknown: "'\(segment)' (\(container.kind) '\(container.name)' declares \(container.declaredNames))")
            }
            if i == path.count - 1 { return .attribute(attribute) }
            let walked = path[...i].joined(separator: ".")
            let element = attribute.type.elementType
            if attribute.relationship != nil {
                guard let related = relatedTable(of: attribute) else {
                    throw QueryError(message: "relationship '\(walked)' does not name a table", offset: offset)
                }
                container = Container(related)
            } else if case .object(let typeName) = element, let nested = schema.nestedTypes[typeName] {
                container = Container(nested)
            } else if element == .any {
                return .undeclared(unknown: nil)
            } else {
                throw QueryError(
                    message:
                        "'\(walked)' is a \(attribute.type) attribute, not a relationship or nested object, so '\(path[i + 1])' cannot follow it",
                    offset: offset
                )
            }
        }
        return .undeclared(unknown: nil)
    }
}
