import Foundation
import MicrolithSchema
import Testing

@Suite("SchemaParser: valid schemas")
struct SchemaParserTests {
    @Test("a table with every directive")
    func fullTable() throws {
        let schema = try parseSchema([
            "# products",
            "type Product @table(database: \"shop\", table: \"products\", expiration: 3600) @export(name: \"items\") @sealed {",
            "    sku: String! @primaryKey",
            "    name: String @indexed",
            "    price: Float",
            "    qty: Int",
            "    views: Long",
            "    active: Boolean",
            "    tags: [String] @indexed",
            "    extra: Any",
            "    created: Long @createdTime",
            "    updated: Date @updatedTime",
            "    brandId: ID",
            "    brand: Brand @relationship(from: brandId)",
            "}",
            "type Brand @table(database: \"shop\") @export {",
            "    id: ID",
            "    products: [Product] @relationship(to: \"brandId\")",
            "}",
        ])
        #expect(schema.tables.count == 2)
        let product = try #require(schema.table(typeName: "Product"))
        #expect(product.name == "products")
        #expect(product.database == "shop")
        #expect(product.expiration == 3600)
        #expect(product.exportName == "items")
        #expect(product.isSealed)
        #expect(product.primaryKey == "sku")
        #expect(product.location == SourceLocation(file: "schema.graphql", line: 2, column: 6))
        #expect(
            product.attributes.map(\.name) == [
                "sku", "name", "price", "qty", "views", "active", "tags", "extra", "created", "updated", "brandId", "brand",
            ])
        #expect(
            product.attributes.map(\.type) == [
                .string, .string, .float, .int, .long, .boolean, .list(.string), .any, .long, .date, .id, .object("Brand"),
            ])
        let sku = try #require(product.attribute("sku"))
        #expect(sku.isRequired && sku.isPrimaryKey)
        #expect(sku.location == SourceLocation(file: "schema.graphql", line: 3, column: 5))
        #expect(product.attribute("name")?.isIndexed == true)
        #expect(product.attribute("price")?.isIndexed == false)
        #expect(product.attribute("price")?.isRequired == false)
        #expect(product.attribute("created")?.isCreatedTime == true)
        #expect(product.attribute("updated")?.isUpdatedTime == true)
        #expect(product.attribute("brand")?.relationship == .from("brandId"))
        #expect(product.indexedAttributes.map(\.name) == ["name", "tags"])

        let brand = try #require(schema.exportedTable("Brand"))
        #expect(brand.typeName == "Brand")
        #expect(brand.name == "Brand")
        #expect(brand.database == "shop")
        #expect(brand.expiration == nil)
        #expect(!brand.isSealed)
        #expect(brand.primaryKey == "id")
        #expect(brand.primaryKeyAttribute.isPrimaryKey)
        #expect(brand.attribute("products")?.relationship == .to("brandId"))
        #expect(brand.attribute("products")?.type == .list(.object("Product")))
        #expect(schema.databases == ["shop"])
        #expect(schema.nestedTypes.isEmpty)
    }

    @Test("@index declares composite indexes, repeated, in order, names quoted or bare")
    func compositeIndexes() throws {
        let schema = try parseSchema([
            "type Product @table @index(attributes: [\"categoryId\", \"position\"]) @index(attributes: [categoryId, name, position]) {",
            "    id: ID",
            "    categoryId: ID @indexed",
            "    name: String @indexed",
            "    position: Int @indexed",
            "}",
            "type Plain @table { id: ID }",
        ])
        let product = try #require(schema.table(typeName: "Product"))
        #expect(product.compositeIndexes.map(\.attributes) == [["categoryId", "position"], ["categoryId", "name", "position"]])
        #expect(product.compositeIndexes.map(\.location.line) == [1, 1])
        #expect(schema.table(typeName: "Plain")?.compositeIndexes == [])
    }

    @Test("@indexed(sparse: true) marks an index that leaves out records without a value; false and no argument do not")
    func sparseIndexes() throws {
        let schema = try parseSchema([
            "type Order @table {",
            "    id: ID",
            "    shippedAt: Date @indexed(sparse: true)",
            "    customerId: ID @indexed(sparse: false)",
            "    status: String @indexed",
            "    tags: [String] @indexed(sparse: false)",
            "}",
        ])
        let order = try #require(schema.table(typeName: "Order"))
        #expect(order.attribute("shippedAt")?.isIndexed == true)
        #expect(order.attribute("shippedAt")?.isSparseIndex == true)
        for name in ["customerId", "status", "tags"] {
            #expect(order.attribute(name)?.isIndexed == true, "\(name)")
            #expect(order.attribute(name)?.isSparseIndex == false, "\(name)")
        }
    }

    @Test("@table defaults and unexported tables")
    func tableDefaults() throws {
        let schema = try parseSchema([
            "type Dog @table { id: ID! name: String }",
            "type Cat @table(table: \"cats\") { id: Int }",
            "type Log @table(database: \"logs\") { id: Long }",
        ])
        let dog = try #require(schema.table(typeName: "Dog"))
        #expect(dog.name == "Dog")
        #expect(dog.database == "data")
        #expect(dog.exportName == nil)
        #expect(dog.expiration == nil)
        #expect(dog.attribute("id")?.isPrimaryKey == true)
        #expect(dog.attribute("id")?.isRequired == true)
        #expect(schema.table(typeName: "Cat")?.name == "cats")
        #expect(schema.table(typeName: "Cat")?.primaryKeyAttribute.type == .int)
        #expect(schema.databases == ["data", "logs"])
        #expect(schema.tables(in: "data").map(\.typeName) == ["Dog", "Cat"])
        #expect(schema.exportedTable("Dog") == nil)
    }

    @Test("nested types, enums, lists and built-in scalar declarations")
    func nestedTypes() throws {
        let schema = try parseSchema([
            "scalar Long",
            "scalar Date",
            "scalar Any",
            "directive @table(database: String, table: String, expiration: Int) on OBJECT",
            "enum Color { RED GREEN }",
            "\"\"\"A postal address\"\"\"",
            "type Address @sealed { street: String city: String! location: Point }",
            "type Point { lat: Float lon: Float }",
            "type Person @table {",
            "    id: ID!",
            "    \"home address\"",
            "    home: Address",
            "    others: [Address!]!",
            "    matrix: [[Int]]",
            "    color: Color",
            "    colors: [Color] @indexed",
            "    data: Any @indexed",
            "}",
        ])
        #expect(schema.tables.map(\.typeName) == ["Person"])
        let address = try #require(schema.nestedTypes["Address"])
        #expect(address.isSealed)
        #expect(address.attributes.map(\.name) == ["street", "city", "location"])
        #expect(address.attributes[1].isRequired)
        #expect(address.attributes[2].type == .object("Point"))
        #expect(address.location.line == 7)
        #expect(schema.nestedTypes["Point"]?.isSealed == false)
        let person = try #require(schema.tables.first)
        #expect(person.attribute("home")?.type == .object("Address"))
        #expect(person.attribute("home")?.location.line == 12)
        #expect(person.attribute("others")?.type == .list(.object("Address")))
        #expect(person.attribute("others")?.isRequired == true)
        #expect(person.attribute("matrix")?.type == .list(.list(.int)))
        #expect(person.attribute("color")?.type == .string)
        #expect(person.attribute("colors")?.type == .list(.string))
        #expect(person.indexedAttributes.map(\.name) == ["colors", "data"])
    }

    @Test("blank text and comments only give an empty schema", arguments: ["", "   \n\t", "# nothing here\n, # still nothing"])
    func emptySchema(text: String) throws {
        let schema = try SchemaParser.parse(text, file: "empty.graphql")
        #expect(schema.tables.isEmpty)
        #expect(schema.nestedTypes.isEmpty)
    }

    @Test("a schema with only nested types has no tables")
    func noTables() throws {
        let schema = try parseSchema(["type A { x: Int }"])
        #expect(schema.tables.isEmpty)
        #expect(schema.nestedTypes.keys.sorted() == ["A"])
    }

    @Test("@primaryKey takes precedence over an attribute named id")
    func explicitPrimaryKeyWins() throws {
        let schema = try parseSchema(["type T @table { id: String code: Long @primaryKey }"])
        let table = try #require(schema.tables.first)
        #expect(table.primaryKey == "code")
        #expect(table.attribute("id")?.isPrimaryKey == false)
    }

    @Test("relationship arguments accept strings and bare names, for lists too")
    func relationshipForms() throws {
        let schema = try parseSchema([
            "type A @table { id: ID bRef: ID bIds: [ID] bs: [B] @relationship(from: \"bIds\") b: B @relationship(from: bIds) }",
            "type B @table { id: ID as: [A] @relationship(to: bRef) }",
        ])
        #expect(schema.table(typeName: "A")?.attribute("bs")?.relationship == .from("bIds"))
        #expect(schema.table(typeName: "A")?.attribute("b")?.relationship == .from("bIds"))
        #expect(schema.table(typeName: "B")?.attribute("as")?.relationship == .to("bRef"))
    }

    @Test("the same table name in two databases is allowed")
    func sameTableNameInTwoDatabases() throws {
        let schema = try parseSchema([
            "type A @table(database: \"one\", table: \"t\") { id: ID }",
            "type B @table(database: \"two\", table: \"t\") { id: ID }",
        ])
        #expect(schema.tables.map(\.name) == ["t", "t"])
    }

    @Test("reading a schema file")
    func parseFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("microlith-schema-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("schema.graphql").path
        try "type T @table {\n  id: ID\n  x: Nope\n}\n".write(toFile: path, atomically: true, encoding: .utf8)
        do {
            _ = try SchemaParser.parse(contentsOfFile: path)
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .unknownType)
            #expect(error.location == SourceLocation(file: path, line: 3, column: 3))
            #expect(error.description == "\(path):3:3: error: \(error.message)")
        }
        try "type T @table { id: ID }".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try SchemaParser.parse(contentsOfFile: path).tables.map(\.typeName) == ["T"])
    }

    @Test("a missing file is a SchemaError")
    func missingFile() {
        let path = "/nonexistent-\(UUID().uuidString)/schema.graphql"
        do {
            _ = try SchemaParser.parse(contentsOfFile: path)
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .unreadableFile)
            #expect(error.code == "unreadableFile")
            #expect(error.location == SourceLocation(file: path, line: 1, column: 1))
            #expect(error.message.contains("does not exist"))
        }
    }
}
