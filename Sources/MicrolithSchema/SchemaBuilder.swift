import GraphQL

/// Walks a parsed GraphQL document and builds the ``Schema`` model, enforcing Microlith's rules.
///
/// Work happens in passes so that errors come out in declaration order where possible:
/// 1. collect the type names (object, enum) and refuse unsupported definitions;
/// 2. read each object type's directives (`@table`, `@export`, `@sealed`);
/// 3. read each type's attributes (types, attribute directives);
/// 4. settle each table's primary key and check relationships against the target tables.
struct SchemaBuilder {
    /// A type-level reading of one object type.
    struct TypeHeader {
        var node: ObjectTypeDefinition
        var location: SourceLocation
        var isTable = false
        var database = Schema.defaultDatabase
        var tableName: String
        var expiration: Int?
        var exportName: String?
        var isSealed = false
        /// The `@index` directives, read once the attributes are known.
        var indexDirectives: [Directive] = []
    }

    let lines: SourceLines
    private(set) var headers: [TypeHeader] = []
    /// Names of the declared enums (their attributes hold strings).
    private(set) var enumNames: Set<String> = []
    /// Names of the declared object types, tables or not.
    private(set) var objectTypeNames: Set<String> = []
    /// Declared type names and where they were declared.
    private var declaredTypes: [String: SourceLocation] = [:]

    init(lines: SourceLines) {
        self.lines = lines
    }

    /// The location where `loc` starts.
    func at(_ loc: Location?) -> SourceLocation {
        lines.location(ofOffset: loc?.start ?? 0)
    }

    mutating func build(_ document: Document) throws(SchemaError) -> Schema {
        try collectDefinitions(document)
        try readTypeHeaders()
        let tableTypeNames = Set(headers.filter(\.isTable).map(\.node.name.value))
        var attributesByType: [String: [AttributeDefinition]] = [:]
        for header in headers {
            attributesByType[header.node.name.value] = try readAttributes(of: header, tableTypeNames: tableTypeNames)
        }
        var tables: [TableDefinition] = []
        var nestedTypes: [String: NestedTypeDefinition] = [:]
        for header in headers {
            let name = header.node.name.value
            var attributes = attributesByType[name] ?? []
            if header.isTable {
                let primaryKey = try settlePrimaryKey(of: header, attributes: &attributes)
                try checkRelationships(attributes, of: header, attributesByType: attributesByType)
                let compositeIndexes = try readCompositeIndexes(of: header, attributes: attributes)
                tables.append(
                    TableDefinition(
                        typeName: name,
                        name: header.tableName,
                        database: header.database,
                        exportName: header.exportName,
                        expiration: header.expiration,
                        isSealed: header.isSealed,
                        primaryKey: primaryKey,
                        attributes: attributes,
                        compositeIndexes: compositeIndexes,
                        location: header.location
                    )
                )
            } else {
                nestedTypes[name] = NestedTypeDefinition(
                    name: name,
                    isSealed: header.isSealed,
                    attributes: attributes,
                    location: header.location
                )
            }
        }
        return Schema(tables: tables, nestedTypes: nestedTypes)
    }

    // MARK: - Pass 1: definitions

    private mutating func collectDefinitions(_ document: Document) throws(SchemaError) {
        for definition in document.definitions {
            switch definition {
            case let object as ObjectTypeDefinition:
                try declareType(object.name)
                if let interface = object.interfaces.first {
                    throw SchemaError(
                        code: .unsupported,
                        location: at(interface.loc),
                        message: "type '\(object.name.value)' implements '\(interface.name.value)': interfaces are not supported"
                    )
                }
                headers.append(TypeHeader(node: object, location: at(object.name.loc), tableName: object.name.value))
                objectTypeNames.insert(object.name.value)
            case let enumeration as EnumTypeDefinition:
                try declareType(enumeration.name)
                if let directive = enumeration.directives.first {
                    throw SchemaError(
                        code: .badDirective,
                        location: at(directive.loc),
                        message: "@\(directive.name.value) is not allowed on enum '\(enumeration.name.value)'"
                    )
                }
                enumNames.insert(enumeration.name.value)
            case let scalar as ScalarTypeDefinition:
                guard SchemaParser.builtinScalarNames.contains(scalar.name.value) else {
                    throw SchemaError(
                        code: .unsupported,
                        location: at(scalar.name.loc),
                        message: "custom scalar '\(scalar.name.value)' is not supported; the scalars are "
                            + SchemaParser.builtinScalarNames.joined(separator: ", ")
                    )
                }
            case let directive as DirectiveDefinition:
                guard SchemaParser.knownDirectiveNames.contains(directive.name.value) else {
                    throw SchemaError(
                        code: .unsupported,
                        location: at(directive.name.loc),
                        message: "declaring directive @\(directive.name.value) is not supported; "
                            + "only Microlith's own directives may be declared"
                    )
                }
            default:
                throw SchemaError(
                    code: .unsupported,
                    location: at(definition.loc),
                    message: "\(Self.describe(definition)) is not supported in a Microlith schema"
                )
            }
        }
    }

    private mutating func declareType(_ name: Name) throws(SchemaError) {
        if SchemaParser.builtinScalarNames.contains(name.value) {
            throw SchemaError(
                code: .duplicateType,
                location: at(name.loc),
                message: "type name '\(name.value)' is taken by a built-in scalar"
            )
        }
        if let first = declaredTypes[name.value] {
            throw SchemaError(
                code: .duplicateType,
                location: at(name.loc),
                message: "type '\(name.value)' is already declared at line \(first.line)"
            )
        }
        declaredTypes[name.value] = at(name.loc)
    }

    /// A short phrase naming an unsupported definition, for error messages.
    private static func describe(_ definition: any Definition) -> String {
        switch definition {
        case let d as InterfaceTypeDefinition: return "interface '\(d.name.value)'"
        case let d as UnionTypeDefinition: return "union '\(d.name.value)'"
        case let d as InputObjectTypeDefinition: return "input type '\(d.name.value)'"
        case is SchemaDefinition: return "a schema definition"
        case is OperationDefinition: return "an operation (query, mutation or subscription)"
        case is FragmentDefinition: return "a fragment"
        case is TypeExtensionDefinition, is SchemaExtensionDefinition, is InterfaceExtensionDefinition,
            is ScalarExtensionDefinition, is UnionExtensionDefinition, is EnumExtensionDefinition,
            is InputObjectExtensionDefinition:
            return "an 'extend' definition"
        default: return "this definition"
        }
    }

    // MARK: - Pass 2: type directives

    private mutating func readTypeHeaders() throws(SchemaError) {
        var tablesByKey: [String: String] = [:]
        var exports: [String: String] = [:]
        for index in headers.indices {
            var header = headers[index]
            let typeName = header.node.name.value
            var seen: Set<String> = []
            var exportDirective: Directive?
            for directive in header.node.directives {
                let name = directive.name.value
                guard SchemaParser.knownDirectiveNames.contains(name) else { throw unknownDirective(directive) }
                guard name == "index" || !seen.contains(name) else { throw repeatedDirective(directive) }
                seen.insert(name)
                switch name {
                case "table":
                    header.isTable = true
                    try readTableArguments(directive, into: &header)
                case "export":
                    exportDirective = directive
                    header.exportName = typeName
                    for argument in directive.arguments {
                        guard argument.name.value == "name" else {
                            throw unknownArgument(argument, of: directive, expected: ["name"])
                        }
                        let value = try stringArgument(argument, of: directive)
                        try checkName(value, argument: argument, of: directive, allowed: Self.isExportCharacter)
                        if value == "." || value == ".." {
                            throw badArgument(argument, of: directive, "must not be '.' or '..'")
                        }
                        header.exportName = value
                    }
                case "sealed":
                    try requireNoArguments(directive)
                    header.isSealed = true
                case "index":
                    header.indexDirectives.append(directive)
                default:
                    throw SchemaError(
                        code: .badDirective,
                        location: at(directive.loc),
                        message: "@\(name) applies to attributes, not to types (on type '\(typeName)')"
                    )
                }
            }
            if let index = header.indexDirectives.first, !header.isTable {
                throw SchemaError(
                    code: .badDirective,
                    location: at(index.loc),
                    message: "@index requires @table: type '\(typeName)' is not a table"
                )
            }
            if let exportDirective, !header.isTable {
                throw SchemaError(
                    code: .badDirective,
                    location: at(exportDirective.loc),
                    message: "@export requires @table: type '\(typeName)' is not a table"
                )
            }
            if header.isTable {
                let key = "\(header.database)\u{0}\(header.tableName)"
                if let other = tablesByKey[key] {
                    throw SchemaError(
                        code: .duplicateTable,
                        location: header.location,
                        message: "table '\(header.tableName)' in database '\(header.database)' is already declared by type '\(other)'"
                    )
                }
                tablesByKey[key] = typeName
                if let exportName = header.exportName {
                    if let other = exports[exportName] {
                        throw SchemaError(
                            code: .duplicateExport,
                            location: header.location,
                            message: "export name '\(exportName)' is already used by type '\(other)'"
                        )
                    }
                    exports[exportName] = typeName
                }
            }
            headers[index] = header
        }
    }

    private func readTableArguments(_ directive: Directive, into header: inout TypeHeader) throws(SchemaError) {
        for argument in directive.arguments {
            switch argument.name.value {
            case "database":
                header.database = try stringArgument(argument, of: directive)
                try checkName(header.database, argument: argument, of: directive, allowed: Self.isTableNameCharacter)
            case "table":
                header.tableName = try stringArgument(argument, of: directive)
                try checkName(header.tableName, argument: argument, of: directive, allowed: Self.isTableNameCharacter)
            case "expiration":
                guard let value = argument.value as? IntValue else {
                    throw badArgument(argument, of: directive, "must be a whole number of seconds, got \(Self.describe(argument.value))")
                }
                guard let seconds = Int(value.value), seconds > 0 else {
                    throw badArgument(argument, of: directive, "must be a positive number of seconds, got \(value.value)")
                }
                header.expiration = seconds
            default:
                throw unknownArgument(argument, of: directive, expected: ["database", "table", "expiration"])
            }
        }
    }

    private static func isTableNameCharacter(_ c: Unicode.Scalar) -> Bool {
        c.isASCII && (c.properties.isAlphabetic || ("0"..."9").contains(c) || c == "_" || c == "-")
    }

    private static func isExportCharacter(_ c: Unicode.Scalar) -> Bool {
        isTableNameCharacter(c) || c == "." || c == "~"
    }

    private func checkName(
        _ value: String,
        argument: Argument,
        of directive: Directive,
        allowed: (Unicode.Scalar) -> Bool
    ) throws(SchemaError) {
        if value.isEmpty { throw badArgument(argument, of: directive, "must not be empty") }
        if let bad = value.unicodeScalars.first(where: { !allowed($0) }) {
            throw badArgument(argument, of: directive, "contains the character '\(bad)', which is not allowed in '\(value)'")
        }
    }
}
