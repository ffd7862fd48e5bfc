import MicrolithSchema
import Testing

/// One schema that must fail, with where and why.
struct ErrorCase: Sendable, CustomTestStringConvertible {
    var name: String
    var lines: [String]
    var code: SchemaError.Code
    var line: Int
    var column: Int
    var fragments: [String]

    init(_ name: String, _ lines: [String], _ code: SchemaError.Code, _ line: Int, _ column: Int, _ fragments: String...) {
        self.name = name
        self.lines = lines
        self.code = code
        self.line = line
        self.column = column
        self.fragments = fragments
    }

    var testDescription: String { name }
}

private let tableB = "type B @table { id: ID aId: ID }"

private let syntaxCases: [ErrorCase] = [
    ErrorCase("missing colon", ["type T @table {", "    id: ID", "    name String", "}"], .syntax, 3, 10, "syntax error", "String"),
    ErrorCase("unterminated string", ["type T @table(database: \"x) {", "  id: ID", "}"], .syntax, 1, 30, "Unterminated string"),
    ErrorCase("missing closing brace", ["type T @table {", "  id: ID"], .syntax, 2, 9, "<EOF>"),
    ErrorCase("column counts characters, not bytes", ["# é", "type T @table { \"é\" id ID }"], .syntax, 2, 24, "syntax error"),
]

private let typeCases: [ErrorCase] = [
    ErrorCase("unknown type", ["type T @table {", "    id: ID", "    price: Money", "}"], .unknownType, 3, 5, "'price'", "'Money'"),
    ErrorCase("unknown type in a list", ["type T @table {", "    id: ID", "    tags: [Tag!]!", "}"], .unknownType, 3, 5, "'Tag'"),
    ErrorCase("BigInt is not a type", ["type T @table { id: ID n: BigInt }"], .unknownType, 1, 24, "'BigInt'"),
    ErrorCase("unknown type in a nested type", ["type N {", "  x: Nope", "}"], .unknownType, 2, 3, "'Nope'"),
    ErrorCase("duplicate type", ["type A { x: Int }", "type A { y: Int }"], .duplicateType, 2, 6, "'A'", "line 1"),
    ErrorCase("type named after a scalar", ["type String { x: Int }"], .duplicateType, 1, 6, "built-in scalar"),
    ErrorCase("enum and type share a name", ["enum A { X }", "type A { y: Int }"], .duplicateType, 2, 6, "'A'"),
    ErrorCase(
        "duplicate table",
        ["type A @table(table: \"t\") { id: ID }", "type B @table(table: \"t\") { id: ID }"],
        .duplicateTable, 2, 6, "table 't' in database 'data'", "'A'"
    ),
    ErrorCase(
        "duplicate table through the default name",
        ["type A @table(table: \"B\") { id: ID }", "type B @table { id: ID }"],
        .duplicateTable, 2, 6, "table 'B'"
    ),
    ErrorCase(
        "duplicate export",
        ["type A @table @export(name: \"x\") { id: ID }", "type B @table(database: \"other\") @export(name: \"x\") { id: ID }"],
        .duplicateExport, 2, 6, "export name 'x'", "'A'"
    ),
    ErrorCase(
        "duplicate export through the default name",
        ["type A @table @export(name: \"B\") { id: ID }", "type B @table @export { id: ID }"],
        .duplicateExport, 2, 6, "'B'"
    ),
    ErrorCase(
        "duplicate attribute", ["type A @table {", "    id: ID", "    x: Int", "    x: String", "}"], .duplicateAttribute, 4, 5, "'x'", "line 3"),
]

private let primaryKeyCases: [ErrorCase] = [
    ErrorCase(
        "no primary key", ["type Product @table {", "    sku: String", "}"], .missingPrimaryKey, 1, 6,
        "table Product has no primary key: mark one attribute @primaryKey"
    ),
    ErrorCase(
        "two primary keys", ["type A @table {", "    a: ID @primaryKey", "    b: ID @primaryKey", "}"], .duplicatePrimaryKey, 3, 5,
        "'a' and 'b'"
    ),
    ErrorCase("Float id", ["type A @table {", "    id: Float", "}"], .badPrimaryKey, 2, 5, "must be ID, String, Int or Long, got Float"),
    ErrorCase("list primary key", ["type A @table {", "    a: [ID] @primaryKey", "}"], .badPrimaryKey, 2, 5, "got [ID]"),
    ErrorCase("Boolean primary key", ["type A @table {", "    a: Boolean! @primaryKey", "}"], .badPrimaryKey, 2, 5, "got Boolean"),
    ErrorCase(
        "Date primary key", ["type A @table {", "    a: Date @primaryKey", "}"], .badPrimaryKey, 2, 5, "got Date"
    ),
    ErrorCase(
        "id is a relationship", ["type B @table { id: ID }", "type A @table { x: ID id: B @relationship(from: x) }"],
        .badPrimaryKey, 2, 23, "'id'", "relationship"
    ),
]

private let directiveCases: [ErrorCase] = [
    ErrorCase(
        "unknown attribute directive", ["type A @table {", "    id: ID @key", "}"], .unknownDirective, 2, 12, "@key", "@primaryKey", "@relationship"),
    ErrorCase("unknown type directive", ["type A @tabel { id: ID }"], .unknownDirective, 1, 8, "unknown directive @tabel", "@table"),
    ErrorCase("unknown @table argument", ["type A @table(name: \"x\") { id: ID }"], .badDirective, 1, 15, "unknown argument 'name' for @table"),
    ErrorCase(
        "expiration given as a string", ["type A @table(expiration: \"1h\") { id: ID }"], .badDirective, 1, 15,
        "'expiration'", "whole number of seconds"
    ),
    ErrorCase("zero expiration", ["type A @table(expiration: 0) { id: ID }"], .badDirective, 1, 15, "positive"),
    ErrorCase("database given as a number", ["type A @table(database: 1) { id: ID }"], .badDirective, 1, 15, "must be a string", "integer 1"),
    ErrorCase("database with a slash", ["type A @table(database: \"a/b\") { id: ID }"], .badDirective, 1, 15, "'/'"),
    ErrorCase("empty table name", ["type A @table(table: \"\") { id: ID }"], .badDirective, 1, 15, "must not be empty"),
    ErrorCase(
        "unknown @export argument", ["type A @table @export(path: \"x\") { id: ID }"], .badDirective, 1, 23, "unknown argument 'path' for @export"),
    ErrorCase("@export name with a slash", ["type A @table @export(name: \"a/b\") { id: ID }"], .badDirective, 1, 23, "'/'"),
    ErrorCase("@export name '..'", ["type A @table @export(name: \"..\") { id: ID }"], .badDirective, 1, 23, "'..'"),
    ErrorCase("@export without @table", ["type A @export { x: Int }"], .badDirective, 1, 8, "@export requires @table"),
    ErrorCase("@sealed with an argument", ["type A @table @sealed(strict: true) { id: ID }"], .badDirective, 1, 23, "'strict'", "no arguments"),
    ErrorCase("repeated type directive", ["type A @table @table { id: ID }"], .badDirective, 1, 15, "@table is repeated"),
    ErrorCase(
        "repeated attribute directive", ["type A @table {", "    id: ID @indexed @indexed", "}"], .badDirective, 2, 21, "@indexed is repeated"),
    ErrorCase("attribute directive on a type", ["type A @table @indexed { id: ID }"], .badDirective, 1, 15, "@indexed applies to attributes"),
    ErrorCase("type directive on an attribute", ["type A @table {", "    id: ID @table", "}"], .badDirective, 2, 12, "@table applies to types"),
    ErrorCase(
        "@indexed with an argument", ["type A @table {", "    id: ID @indexed(unique: true)", "}"], .badDirective, 2, 21, "'unique'", "'sparse'"),
    ErrorCase(
        "@indexed(sparse:) not a boolean", ["type A @table {", "    id: ID", "    n: Int @indexed(sparse: \"yes\")", "}"], .badDirective, 3, 21,
        "'sparse'", "true or false", "a string"),
    ErrorCase(
        "@indexed(sparse:) repeated", ["type A @table {", "    id: ID", "    n: Int @indexed(sparse: true, sparse: false)", "}"], .badDirective, 3,
        35, "'sparse'", "repeated"),
    ErrorCase(
        "@indexed(sparse: true) on a list", ["type A @table {", "    id: ID", "    tags: [String] @indexed(sparse: true)", "}"], .badDirective, 3, 5,
        "scalar attributes", "'tags'"),
    ErrorCase(
        "@indexed(sparse: true) on the primary key", ["type A @table {", "    id: ID @primaryKey @indexed(sparse: true)", "}"], .badDirective, 2, 5,
        "primary key 'id'"),
    ErrorCase(
        "@indexed(sparse: true) on an implicit primary key", ["type A @table {", "    id: ID @indexed(sparse: true)", "}"], .badDirective, 2, 5,
        "primary key 'id' of table A"),
    ErrorCase(
        "@indexed on a nested object", ["type P { x: Int }", "type A @table {", "    id: ID", "    p: P @indexed", "}"], .badDirective, 4, 5,
        "only scalars and lists of scalars"
    ),
    ErrorCase(
        "@indexed on a list of nested objects", ["type P { x: Int }", "type A @table {", "    id: ID", "    p: [P] @indexed", "}"],
        .badDirective, 4, 5, "[P]"
    ),
    ErrorCase(
        "@indexed inside a nested type", ["type P {", "    x: Int @indexed", "}"], .badDirective, 2, 12, "only allowed on table attributes", "'P'"),
    ErrorCase("@primaryKey inside a nested type", ["type P {", "    x: ID @primaryKey", "}"], .badDirective, 2, 11, "@primaryKey"),
    ErrorCase(
        "@createdTime on a String", ["type A @table {", "    id: ID", "    c: String @createdTime", "}"], .badDirective, 3, 5,
        "@createdTime requires", "'c' is String"
    ),
    ErrorCase(
        "@updatedTime on a list", ["type A @table {", "    id: ID", "    u: [Long] @updatedTime", "}"], .badDirective, 3, 5, "@updatedTime requires"),
    ErrorCase(
        "@createdTime and @updatedTime together", ["type A @table {", "    id: ID", "    t: Long @createdTime @updatedTime", "}"], .badDirective, 3,
        5,
        "both"
    ),
    ErrorCase(
        "@createdTime on the primary key", ["type A @table {", "    id: Long @primaryKey @createdTime", "}"], .badDirective, 2, 5,
        "primary key 'id' cannot also be @createdTime"
    ),
    ErrorCase("directive on an enum", ["enum E @sealed { X }"], .badDirective, 1, 8, "not allowed on enum"),
]

private let compositeIndexCases: [ErrorCase] = [
    ErrorCase(
        "@index on a type that is not a table", ["type A @index(attributes: [\"a\", \"b\"]) { a: Int }"], .badDirective, 1, 8,
        "@index requires @table"),
    ErrorCase(
        "@index without attributes", ["type A @table @index { id: ID a: Int @indexed b: String @indexed c: Int t: [Int] @indexed }"], .badDirective,
        1, 15, "needs the attributes"),
    ErrorCase(
        "@index with an unknown argument",
        ["type A @table @index(attributes: [\"a\", \"b\"], unique: true) { id: ID a: Int @indexed b: String @indexed c: Int t: [Int] @indexed }"],
        .badDirective, 1, 46, "unknown argument 'unique'"),
    ErrorCase(
        "@index attributes not a list",
        ["type A @table @index(attributes: \"a\") { id: ID a: Int @indexed b: String @indexed c: Int t: [Int] @indexed }"], .badDirective, 1, 22,
        "must be a list"),
    ErrorCase(
        "@index naming no attribute",
        ["type A @table @index(attributes: [\"a\", \"z\"]) { id: ID a: Int @indexed b: String @indexed c: Int t: [Int] @indexed }"], .badDirective, 1,
        22, "'z', which is not an attribute of A"),
    ErrorCase(
        "@index naming an attribute that is not indexed",
        ["type A @table @index(attributes: [\"a\", \"c\"]) { id: ID a: Int @indexed b: String @indexed c: Int t: [Int] @indexed }"], .badDirective, 1,
        22, "'c', which is not @indexed"),
    ErrorCase(
        "@index naming the primary key",
        ["type A @table @index(attributes: [\"a\", \"id\"]) { id: ID a: Int @indexed b: String @indexed c: Int t: [Int] @indexed }"], .badDirective,
        1, 22, "primary key 'id'"),
    ErrorCase(
        "@index naming a list attribute",
        ["type A @table @index(attributes: [\"a\", \"t\"]) { id: ID a: Int @indexed b: String @indexed c: Int t: [Int] @indexed }"], .badDirective, 1,
        22, "'t' of type [Int]"),
    ErrorCase(
        "@index of one attribute",
        ["type A @table @index(attributes: [\"a\"]) { id: ID a: Int @indexed b: String @indexed c: Int t: [Int] @indexed }"], .badDirective, 1, 22,
        "got 1", "@indexed alone"),
    ErrorCase(
        "@index naming an attribute twice",
        ["type A @table @index(attributes: [\"a\", \"a\"]) { id: ID a: Int @indexed b: String @indexed c: Int t: [Int] @indexed }"], .badDirective, 1,
        22, "names 'a' twice"),
    ErrorCase(
        "@index declared twice",
        [
            "type A @table @index(attributes: [\"a\", \"b\"]) @index(attributes: [\"a\", \"b\"]) { id: ID a: Int @indexed b: String @indexed c: Int t: [Int] @indexed }"
        ], .badDirective, 1, 46, "declared twice"),
    ErrorCase("@index on an attribute", ["type A @table { id: ID a: Int @index }"], .badDirective, 1, 31, "applies to types", "mark it @indexed"),
]

private let relationshipCases: [ErrorCase] = [
    ErrorCase(
        "both from and to", [tableB, "type A @table {", "    id: ID", "    b: B @relationship(from: id, to: aId)", "}"], .badDirective, 4, 34,
        "exactly one"
    ),
    ErrorCase(
        "neither from nor to", [tableB, "type A @table {", "    id: ID", "    b: B @relationship", "}"], .badDirective, 4, 10, "needs one argument"),
    ErrorCase("unknown argument", [tableB, "type A @table {", "    id: ID", "    b: B @relationship(via: id)", "}"], .badDirective, 4, 24, "'via'"),
    ErrorCase(
        "number argument", [tableB, "type A @table {", "    id: ID", "    b: B @relationship(from: 3)", "}"], .badDirective, 4, 24,
        "must be a string"
    ),
    ErrorCase(
        "nested type target", ["type P { x: Int }", "type A @table {", "    id: ID", "    p: P @relationship(from: id)", "}"], .badRelationship, 4, 5,
        "table type", "got P"
    ),
    ErrorCase(
        "scalar target", ["type A @table {", "    id: ID", "    p: String @relationship(from: id)", "}"], .badRelationship, 3, 5, "got String"
    ),
    ErrorCase(
        "from an undeclared attribute", [tableB, "type A @table {", "    id: ID", "    b: B @relationship(from: bId)", "}"], .badRelationship, 4, 5,
        "type 'A' has no attribute 'bId'"
    ),
    ErrorCase(
        "from another relationship",
        [tableB, "type A @table {", "    id: ID", "    c: B @relationship(to: aId)", "    b: B @relationship(from: c)", "}"],
        .badRelationship, 5, 5, "'A.c' is itself a relationship"
    ),
    ErrorCase(
        "to an attribute the target lacks", [tableB, "type A @table {", "    id: ID", "    bs: [B] @relationship(to: aKey)", "}"], .badRelationship,
        4, 5,
        "type 'B' has no attribute 'aKey'"
    ),
    ErrorCase(
        "relationship that is also indexed", [tableB, "type A @table {", "    id: ID", "    b: B @relationship(to: aId) @indexed", "}"],
        .badRelationship, 4, 5, "cannot also be @indexed"
    ),
    ErrorCase(
        "table type without @relationship", [tableB, "type A @table {", "    id: ID", "    b: [B]", "}"], .badRelationship, 4, 5,
        "table type 'B'", "@relationship"
    ),
    ErrorCase(
        "relationship in a nested type", [tableB, "type N {", "    b: B @relationship(to: aId)", "}"], .badDirective, 3, 10,
        "only allowed on table attributes"
    ),
]

private let unsupportedCases: [ErrorCase] = [
    ErrorCase("interface", ["interface Named { name: String }"], .unsupported, 1, 1, "interface 'Named'"),
    ErrorCase("union", ["type A { x: Int }", "union U = A"], .unsupported, 2, 1, "union 'U'"),
    ErrorCase("input", ["input I { x: Int }"], .unsupported, 1, 1, "input type 'I'"),
    ErrorCase("custom scalar", ["scalar Money"], .unsupported, 1, 8, "custom scalar 'Money'"),
    ErrorCase("type extension", ["type A { x: Int }", "extend type A { y: Int }"], .unsupported, 2, 1, "'extend'"),
    ErrorCase("schema definition", ["schema { query: Q }"], .unsupported, 1, 1, "schema definition"),
    ErrorCase("operation", ["query { x }"], .unsupported, 1, 1, "operation"),
    ErrorCase("implements", ["type A implements B { x: Int }"], .unsupported, 1, 19, "interfaces are not supported"),
    ErrorCase("field arguments", ["type A @table {", "    id: ID", "    x(limit: Int): Int", "}"], .unsupported, 3, 7, "'x'", "arguments"),
    ErrorCase("foreign directive declaration", ["directive @auth on FIELD_DEFINITION"], .unsupported, 1, 12, "@auth"),
]

@Suite("SchemaParser: errors")
struct SchemaErrorTests {
    @Test(
        "each broken rule is reported with its code, place and reason",
        arguments: syntaxCases + typeCases + primaryKeyCases + directiveCases + compositeIndexCases + relationshipCases + unsupportedCases
    )
    func reports(_ c: ErrorCase) throws {
        let error = try #require(schemaError(c.lines, file: "s.graphql"), "expected an error for \(c.name)")
        #expect(error.code == c.code, "\(error)")
        #expect(error.location.file == "s.graphql")
        #expect(error.location.line == c.line, "\(error)")
        #expect(error.location.column == c.column, "\(error)")
        for fragment in c.fragments {
            #expect(error.message.contains(fragment), "message '\(error.message)' lacks '\(fragment)'")
        }
        #expect(error.description == "s.graphql:\(c.line):\(c.column): error: \(error.message)")
    }

    @Test("the syntax message drops the GraphQL package's prefix and excerpt")
    func syntaxMessageIsOneLine() throws {
        let error = try #require(schemaError(["type {"]))
        #expect(error.code == .syntax)
        #expect(!error.message.contains("\n"))
        #expect(!error.message.contains("Syntax Error GraphQL"))
        #expect(error.message.hasPrefix("syntax error: "))
    }

    @Test("codes compare with strings and print as their raw value")
    func codes() {
        let error = SchemaError(code: .badDirective, location: SourceLocation(file: "f", line: 2, column: 3), message: "m")
        #expect(error.code == "badDirective")
        #expect(error.code != "syntax")
        #expect("\(error.code)" == "badDirective")
        #expect(error.description == "f:2:3: error: m")
    }

    @Test("unknown directive lists every known directive")
    func unknownDirectiveListsKnownOnes() throws {
        let error = try #require(schemaError(["type A @table { id: ID @unique }"]))
        for name in SchemaParser.knownDirectiveNames {
            #expect(error.message.contains("@\(name)"))
        }
    }

    @Test("the first error in the file wins")
    func firstErrorWins() throws {
        let error = try #require(schemaError(["type A @table { id: ID x: Foo }", "type B @table { id: ID y: Bar }"]))
        #expect(error.message.contains("'Foo'"))
    }
}
