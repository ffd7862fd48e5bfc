import GraphQL

extension SchemaBuilder {
    /// The attribute directives that only make sense on a table's attributes.
    private static let tableOnlyDirectives: Set<String> = ["primaryKey", "indexed", "createdTime", "updatedTime", "relationship"]

    /// The types a `@createdTime` / `@updatedTime` attribute may have.
    private static let timestampTypes: [AttributeType] = [.long, .int, .float, .date, .any]

    /// Reads the attributes of one object type: names, types and attribute directives.
    func readAttributes(of header: TypeHeader, tableTypeNames: Set<String>) throws(SchemaError) -> [AttributeDefinition] {
        var attributes: [AttributeDefinition] = []
        var seen: [String: SourceLocation] = [:]
        let typeName = header.node.name.value
        for field in header.node.fields {
            let name = field.name.value
            let location = at(field.name.loc)
            if let first = seen[name] {
                throw SchemaError(
                    code: .duplicateAttribute,
                    location: location,
                    message: "attribute '\(name)' of type '\(typeName)' is already declared at line \(first.line)"
                )
            }
            seen[name] = location
            if let argument = field.arguments.first {
                throw SchemaError(
                    code: .unsupported,
                    location: at(argument.loc),
                    message: "attribute '\(name)' declares arguments; attribute arguments are not supported"
                )
            }
            let type = try resolveType(field.type, attribute: name, location: location)
            var attribute = AttributeDefinition(
                name: name,
                type: type,
                isRequired: field.type is NonNullType,
                location: location
            )
            try readAttributeDirectives(field, into: &attribute, header: header)
            try checkAttribute(attribute, tableTypeNames: tableTypeNames)
            attributes.append(attribute)
        }
        return attributes
    }

    /// The attribute type written as `type`; non-null markers are dropped (only the outermost
    /// one matters, and the caller reads it).
    private func resolveType(_ type: any GraphQL.`Type`, attribute: String, location: SourceLocation) throws(SchemaError) -> AttributeType {
        switch type {
        case let nonNull as NonNullType:
            return try resolveType(nonNull.type, attribute: attribute, location: location)
        case let list as ListType:
            return .list(try resolveType(list.type, attribute: attribute, location: location))
        case let named as NamedType:
            let name = named.name.value
            switch name {
            case "ID": return .id
            case "String": return .string
            case "Int": return .int
            case "Long": return .long
            case "Float": return .float
            case "Boolean": return .boolean
            case "Date": return .date
            case "Any": return .any
            default:
                if enumNames.contains(name) { return .string }
                if objectTypeNames.contains(name) { return .object(name) }
                throw SchemaError(
                    code: .unknownType,
                    location: location,
                    message: "attribute '\(attribute)' has unknown type '\(name)'; use "
                        + SchemaParser.builtinScalarNames.joined(separator: ", ") + ", an enum or a declared type"
                )
            }
        default:
            throw SchemaError(code: .unknownType, location: location, message: "attribute '\(attribute)' has an unreadable type")
        }
    }

    private func readAttributeDirectives(
        _ field: FieldDefinition,
        into attribute: inout AttributeDefinition,
        header: TypeHeader
    ) throws(SchemaError) {
        var seen: Set<String> = []
        for directive in field.directives {
            let name = directive.name.value
            guard SchemaParser.knownDirectiveNames.contains(name) else { throw unknownDirective(directive) }
            guard !seen.contains(name) else { throw repeatedDirective(directive) }
            seen.insert(name)
            if !header.isTable && Self.tableOnlyDirectives.contains(name) {
                throw SchemaError(
                    code: .badDirective,
                    location: at(directive.loc),
                    message: "@\(name) is only allowed on table attributes; '\(header.node.name.value)' is a nested type (no @table)"
                )
            }
            switch name {
            case "primaryKey":
                try requireNoArguments(directive)
                attribute.isPrimaryKey = true
            case "indexed":
                attribute.isSparseIndex = try readIndexed(directive)
                attribute.isIndexed = true
            case "createdTime":
                try requireNoArguments(directive)
                attribute.isCreatedTime = true
            case "updatedTime":
                try requireNoArguments(directive)
                attribute.isUpdatedTime = true
            case "relationship":
                attribute.relationship = try readRelationship(directive)
            default:
                throw SchemaError(
                    code: .badDirective,
                    location: at(directive.loc),
                    message: "@\(name) applies to types, not to attributes (on attribute '\(attribute.name)')"
                        + (name == "index" ? "; to index one attribute, mark it @indexed" : "")
                )
            }
        }
    }

    /// The `sparse:` argument of `@indexed` (`false` when absent).
    private func readIndexed(_ directive: Directive) throws(SchemaError) -> Bool {
        var sparse = false
        var seen = false
        for argument in directive.arguments {
            guard argument.name.value == "sparse" else { throw unknownArgument(argument, of: directive, expected: ["sparse"]) }
            guard !seen else { throw badArgument(argument, of: directive, "is repeated") }
            seen = true
            guard let value = argument.value as? BooleanValue else {
                throw badArgument(argument, of: directive, "must be true or false, got \(Self.describe(argument.value))")
            }
            sparse = value.value
        }
        return sparse
    }

    private func readRelationship(_ directive: Directive) throws(SchemaError) -> Relationship {
        var relationship: Relationship?
        for argument in directive.arguments {
            let name = argument.name.value
            guard name == "from" || name == "to" else { throw unknownArgument(argument, of: directive, expected: ["from", "to"]) }
            if relationship != nil {
                throw SchemaError(
                    code: .badDirective,
                    location: at(argument.loc),
                    message: "@relationship takes exactly one of 'from' or 'to', not both"
                )
            }
            let value = try stringArgument(argument, of: directive, allowBareName: true)
            if value.isEmpty { throw badArgument(argument, of: directive, "must name an attribute") }
            relationship = name == "from" ? .from(value) : .to(value)
        }
        guard let relationship else {
            throw SchemaError(
                code: .badDirective,
                location: at(directive.loc),
                message: "@relationship needs one argument: 'from' (an attribute of this type) or 'to' (an attribute of the related table)"
            )
        }
        return relationship
    }

    /// Checks the combination of an attribute's type and directives.
    private func checkAttribute(_ attribute: AttributeDefinition, tableTypeNames: Set<String>) throws(SchemaError) {
        let name = attribute.name
        if attribute.relationship != nil {
            let others = [
                (attribute.isPrimaryKey, "@primaryKey"), (attribute.isIndexed, "@indexed"),
                (attribute.isCreatedTime, "@createdTime"), (attribute.isUpdatedTime, "@updatedTime"),
            ]
            if let other = others.first(where: { $0.0 }) {
                throw SchemaError(
                    code: .badRelationship,
                    location: attribute.location,
                    message: "relationship attribute '\(name)' cannot also be \(other.1)"
                )
            }
            var target: String?
            switch attribute.type {
            case .object(let t), .list(.object(let t)): target = t
            default: target = nil
            }
            guard let target, tableTypeNames.contains(target) else {
                throw SchemaError(
                    code: .badRelationship,
                    location: attribute.location,
                    message: "relationship attribute '\(name)' must have a table type or a list of a table type, got \(attribute.type)"
                )
            }
            return
        }
        if case .object(let target) = attribute.type.elementType, tableTypeNames.contains(target) {
            throw SchemaError(
                code: .badRelationship,
                location: attribute.location,
                message: "attribute '\(name)' refers to table type '\(target)': mark it @relationship(from: ...) or @relationship(to: ...)"
            )
        }
        if attribute.isIndexed, case .object = attribute.type.elementType {
            throw SchemaError(
                code: .badDirective,
                location: attribute.location,
                message: "@indexed cannot index attribute '\(name)' of type \(attribute.type): only scalars and lists of scalars can be indexed"
            )
        }
        if attribute.isSparseIndex, attribute.type.isList {
            throw SchemaError(
                code: .badDirective,
                location: attribute.location,
                message: "@indexed(sparse: true) applies to scalar attributes; the index of list attribute '\(name)' "
                    + "already holds only its elements (a record without any has no entry)"
            )
        }
        if attribute.isCreatedTime && attribute.isUpdatedTime {
            throw SchemaError(
                code: .badDirective,
                location: attribute.location,
                message: "attribute '\(name)' cannot be both @createdTime and @updatedTime"
            )
        }
        if attribute.isCreatedTime || attribute.isUpdatedTime {
            let directive = attribute.isCreatedTime ? "@createdTime" : "@updatedTime"
            if attribute.isPrimaryKey {
                throw SchemaError(
                    code: .badDirective,
                    location: attribute.location,
                    message: "primary key '\(name)' cannot also be \(directive)"
                )
            }
            if !Self.timestampTypes.contains(attribute.type) {
                throw SchemaError(
                    code: .badDirective,
                    location: attribute.location,
                    message: "\(directive) requires an attribute of type Long, Int, Float, Date or Any; '\(name)' is \(attribute.type)"
                )
            }
        }
    }
}
