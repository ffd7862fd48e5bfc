import GraphQL

/// Reading directive arguments and building the errors about directives.
extension SchemaBuilder {
    func unknownDirective(_ directive: Directive) -> SchemaError {
        SchemaError(
            code: .unknownDirective,
            location: at(directive.loc),
            message: "unknown directive @\(directive.name.value); known directives are "
                + SchemaParser.knownDirectiveNames.map { "@\($0)" }.joined(separator: ", ")
        )
    }

    func repeatedDirective(_ directive: Directive) -> SchemaError {
        SchemaError(code: .badDirective, location: at(directive.loc), message: "@\(directive.name.value) is repeated")
    }

    func unknownArgument(_ argument: Argument, of directive: Directive, expected: [String]) -> SchemaError {
        SchemaError(
            code: .badDirective,
            location: at(argument.loc),
            message: "unknown argument '\(argument.name.value)' for @\(directive.name.value); expected "
                + expected.map { "'\($0)'" }.joined(separator: ", ")
        )
    }

    func badArgument(_ argument: Argument, of directive: Directive, _ problem: String) -> SchemaError {
        SchemaError(
            code: .badDirective,
            location: at(argument.loc),
            message: "argument '\(argument.name.value)' of @\(directive.name.value) \(problem)"
        )
    }

    func requireNoArguments(_ directive: Directive) throws(SchemaError) {
        if let argument = directive.arguments.first {
            throw SchemaError(
                code: .badDirective,
                location: at(argument.loc),
                message: "unknown argument '\(argument.name.value)' for @\(directive.name.value); it takes no arguments"
            )
        }
    }

    /// The string value of `argument`; with `allowBareName`, a bare name (`from: brandId`) is
    /// accepted as well as a string (`from: "brandId"`).
    func stringArgument(_ argument: Argument, of directive: Directive, allowBareName: Bool = false) throws(SchemaError) -> String {
        if let string = argument.value as? StringValue { return string.value }
        if allowBareName, let name = argument.value as? EnumValue { return name.value }
        throw badArgument(argument, of: directive, "must be a string, got \(Self.describe(argument.value))")
    }

    /// A short phrase naming the kind of a GraphQL value, for error messages.
    static func describe(_ value: any Value) -> String {
        switch value {
        case let v as IntValue: return "the integer \(v.value)"
        case let v as FloatValue: return "the number \(v.value)"
        case let v as BooleanValue: return "the boolean \(v.value)"
        case is NullValue: return "null"
        case let v as EnumValue: return "the bare name \(v.value)"
        case is StringValue: return "a string"
        case is ListValue: return "a list"
        case is ObjectValue: return "an object"
        case is Variable: return "a variable"
        default: return "an unsupported value"
        }
    }
}
