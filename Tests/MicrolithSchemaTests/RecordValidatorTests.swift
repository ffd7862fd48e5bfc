import MicrolithJSON
import MicrolithSchema
import Testing

private let validatorSchemaText = [
    "type Address @sealed { street: String city: String! zip: Int }",
    "type Meta { note: String at: Date }",
    "type Product @table @sealed {",
    "    sku: ID! @primaryKey",
    "    name: String!",
    "    price: Float",
    "    qty: Int",
    "    views: Long",
    "    active: Boolean",
    "    born: Date",
    "    extra: Any",
    "    ref: ID",
    "    tags: [String]",
    "    dates: [Date]",
    "    grid: [[Int]]",
    "    address: Address",
    "    addresses: [Address]",
    "    meta: Meta",
    "    created: Long! @createdTime",
    "    updated: Date! @updatedTime",
    "    brandId: Int",
    "    brand: Brand! @relationship(from: brandId)",
    "}",
    "type Brand @table { id: Int! name: String products: [Product] @relationship(to: brandId) }",
    "type Counter @table { id: Long }",
    "type Note @table { id: String! }",
]

@Suite("RecordValidator")
struct RecordValidatorTests {
    let schema: Schema
    let product: TableDefinition
    let brand: TableDefinition

    init() throws {
        schema = try parseSchema(validatorSchemaText)
        product = try #require(schema.table(typeName: "Product"))
        brand = try #require(schema.table(typeName: "Brand"))
    }

    func record(_ value: JSONValue) -> JSONObject {
        value.objectValue ?? JSONObject()
    }

    /// Validates `members` added to a minimal valid Product.
    func validateProduct(_ members: JSONValue) throws(RecordValidationError) -> JSONObject {
        var object = JSONObject()
        object["name"] = "n"
        for (key, value) in record(members).members { object[key] = value }
        return try RecordValidator.validate(object, table: product, schema: schema)
    }

    /// The error for `members` added to a minimal valid Product.
    func productError(_ members: JSONValue) -> RecordValidationError? {
        do {
            _ = try validateProduct(members)
            return nil
        } catch {
            return error
        }
    }

    func expectError(
        _ members: JSONValue,
        attribute: String,
        message: String,
        sourceLocation: Testing.SourceLocation = #_sourceLocation
    ) {
        guard let error = productError(members) else {
            Issue.record("expected an error for \(members)", sourceLocation: sourceLocation)
            return
        }
        #expect(error.attribute == attribute, sourceLocation: sourceLocation)
        #expect(error.message == message, sourceLocation: sourceLocation)
        #expect(error.description == message, sourceLocation: sourceLocation)
    }

    @Test("a full valid record is normalised and keeps its member order")
    func fullRecord() throws {
        let input: JSONValue = [
            "sku": "p1", "extra": ["any": [1, "two"]], "name": "Widget", "price": 9.5, "qty": 3.0, "views": 12, "active": true,
            "born": "2000-02-29T01:02:03+01:00", "ref": 7.0, "tags": ["a", nil, "b"], "dates": [0, "1970-01-02"], "grid": [[1], [2.0, 3]],
            "address": ["city": "Paris", "street": "Rue"], "addresses": [["city": "Oslo"]],
            "meta": ["at": 1000, "note": "x", "free": [true]], "created": 5, "updated": "2024-01-01", "brandId": 4,
        ]
        let result = try RecordValidator.validate(record(input), table: product, schema: schema)
        #expect(result.keys == record(input).keys)
        #expect(result["born"] == "2000-02-29T00:02:03.000Z")
        #expect(result["dates"] == ["1970-01-01T00:00:00.000Z", "1970-01-02T00:00:00.000Z"])
        #expect(result["updated"] == "2024-01-01T00:00:00.000Z")
        #expect(result["meta"]?["at"] == "1970-01-01T00:00:01.000Z")
        #expect(result["meta"]?["free"] == [true])
        #expect(result["meta"]?.objectValue?.keys == ["at", "note", "free"])
        #expect(result["address"]?.objectValue?.keys == ["city", "street"])
        #expect(result["extra"] == ["any": [1, "two"]])
        #expect(result["tags"] == ["a", nil, "b"])
        // Integral doubles become integers (JSONValue's == would not tell 3 from 3.0).
        #expect(isInt(result["qty"], 3))
        #expect(isInt(result["ref"], 7))
        #expect(isInt(result["grid"]?.arrayValue?[1].arrayValue?[0], 2))
        #expect(result["price"] == 9.5)
        #expect(result["sku"] == "p1")
    }

    private func isInt(_ value: JSONValue?, _ expected: Int64) -> Bool {
        if case .int(let i)? = value { return i == expected }
        return false
    }

    @Test("the store fills the primary key and timestamps, so they may be missing or null")
    func storeFilledAttributes() throws {
        #expect(try validateProduct([:]).keys == ["name"])
        let result = try validateProduct(["sku": nil, "created": nil, "updated": nil])
        #expect(result["sku"] == .null)
        #expect(result["created"] == .null)
    }

    @Test("required attributes")
    func required() throws {
        do {
            _ = try RecordValidator.validate(record(["sku": "a"]), table: product, schema: schema)
            Issue.record("expected an error")
        } catch {
            #expect(error.attribute == "name")
            #expect(error.message == "attribute 'name' is required")
        }
        expectError(["name": nil], attribute: "name", message: "attribute 'name' is required and cannot be null")
        // Optional attributes take null.
        #expect(try validateProduct(["price": nil, "address": nil, "tags": nil])["price"] == .null)
    }

    @Test("scalar type mismatches")
    func scalarMismatches() {
        expectError(["price": "1"], attribute: "price", message: "attribute 'price' must be a Float (number), got string")
        expectError(["name": 5], attribute: "name", message: "attribute 'name' must be a String (string), got number 5")
        expectError(["qty": 1.5], attribute: "qty", message: "attribute 'qty' must be an Int (32-bit integer), got number 1.5")
        expectError(
            ["qty": 2_147_483_648], attribute: "qty", message: "attribute 'qty' must be an Int (32-bit integer), got number 2147483648"
        )
        expectError(["qty": "3"], attribute: "qty", message: "attribute 'qty' must be an Int (32-bit integer), got string")
        expectError(["views": 1e19], attribute: "views", message: "attribute 'views' must be a Long (64-bit integer), got number 1e+19")
        expectError(["views": false], attribute: "views", message: "attribute 'views' must be a Long (64-bit integer), got boolean")
        expectError(["active": "true"], attribute: "active", message: "attribute 'active' must be a Boolean (true or false), got string")
        expectError(["ref": true], attribute: "ref", message: "attribute 'ref' must be an ID (string or integer), got boolean")
        expectError(["ref": 1.5], attribute: "ref", message: "attribute 'ref' must be an ID (string or integer), got number 1.5")
        expectError(["price": [1]], attribute: "price", message: "attribute 'price' must be a Float (number), got array")
        expectError(["price": ["a": 1]], attribute: "price", message: "attribute 'price' must be a Float (number), got object")
    }

    @Test("integer limits")
    func integerLimits() throws {
        let result = try validateProduct(["qty": 2_147_483_647, "views": .int(Int64.max)])
        #expect(result["qty"] == 2_147_483_647)
        #expect(try validateProduct(["qty": -2_147_483_648])["qty"] == -2_147_483_648)
        expectError(["qty": -2_147_483_649], attribute: "qty", message: "attribute 'qty' must be an Int (32-bit integer), got number -2147483649")
        #expect(isInt(try validateProduct(["views": -3.0])["views"], -3))
        #expect(isInt(try validateProduct(["price": 2])["price"], 2))
    }

    @Test("dates")
    func dates() throws {
        #expect(try validateProduct(["born": 1.9])["born"] == "1970-01-01T00:00:00.001Z")
        #expect(try validateProduct(["born": -1])["born"] == "1969-12-31T23:59:59.999Z")
        #expect(try validateProduct(["born": "1969-07-20T20:17:40Z"])["born"] == "1969-07-20T20:17:40.000Z")
        expectError(
            ["born": "yesterday"], attribute: "born",
            message:
                "attribute 'born' must be a Date (ISO 8601 string or milliseconds since 1970), got string \"yesterday\" which is not a valid date"
        )
        expectError(
            ["born": true], attribute: "born", message: "attribute 'born' must be a Date (ISO 8601 string or milliseconds since 1970), got boolean"
        )
        expectError(
            ["born": 1e300], attribute: "born",
            message: "attribute 'born' must be a Date (ISO 8601 string or milliseconds since 1970), got number 1e+300"
        )
        expectError(
            ["born": 253_402_300_800_000], attribute: "born",
            message: "attribute 'born' must be a Date between years 0000 and 9999, got number 253402300800000"
        )
        expectError(
            ["updated": "2024-02-30"], attribute: "updated",
            message:
                "attribute 'updated' must be a Date (ISO 8601 string or milliseconds since 1970), got string \"2024-02-30\" which is not a valid date"
        )
        expectError(["created": "now"], attribute: "created", message: "attribute 'created' must be a Long (64-bit integer), got string")
    }

    @Test("Any takes every value unchanged")
    func anyValues() throws {
        for value: JSONValue in [nil, true, 1, 1.5, "s", [1, "a"], ["k": ["n": nil]]] {
            #expect(try validateProduct(["extra": value])["extra"] == value)
        }
    }

    @Test("lists")
    func lists() {
        expectError(["tags": "a"], attribute: "tags", message: "attribute 'tags' must be a list [String] (array), got string")
        expectError(["tags": ["a", 3]], attribute: "tags[1]", message: "attribute 'tags[1]' must be a String (string), got number 3")
        expectError(
            ["grid": [[1], [2, "x"]]], attribute: "grid[1][1]", message: "attribute 'grid[1][1]' must be an Int (32-bit integer), got string")
        expectError(["grid": [1]], attribute: "grid[0]", message: "attribute 'grid[0]' must be a list [Int] (array), got number 1")
        expectError(
            ["dates": ["2024-01-01", "x"]], attribute: "dates[1]",
            message: "attribute 'dates[1]' must be a Date (ISO 8601 string or milliseconds since 1970), got string \"x\" which is not a valid date"
        )
    }

    @Test("nested objects")
    func nested() throws {
        expectError(["address": "Paris"], attribute: "address", message: "attribute 'address' must be an Address (object), got string")
        expectError(["address": ["street": "x"]], attribute: "address.city", message: "attribute 'address.city' is required")
        expectError(["address": ["city": nil]], attribute: "address.city", message: "attribute 'address.city' is required and cannot be null")
        expectError(
            ["address": ["city": "c", "country": "FR"]], attribute: "address.country",
            message: "attribute 'address.country' is not declared in sealed type Address"
        )
        expectError(
            ["address": ["city": "c", "zip": 1.5]], attribute: "address.zip",
            message: "attribute 'address.zip' must be an Int (32-bit integer), got number 1.5"
        )
        expectError(
            ["addresses": [["city": "a"], ["city": "b", "street": 1]]], attribute: "addresses[1].street",
            message: "attribute 'addresses[1].street' must be a String (string), got number 1"
        )
        expectError(["addresses": [[:]]], attribute: "addresses[0].city", message: "attribute 'addresses[0].city' is required")
        expectError(["meta": [1]], attribute: "meta", message: "attribute 'meta' must be a Meta (object), got array")
        expectError(
            ["meta": ["at": "x"]], attribute: "meta.at",
            message: "attribute 'meta.at' must be a Date (ISO 8601 string or milliseconds since 1970), got string \"x\" which is not a valid date")
        #expect(isInt(try validateProduct(["address": ["city": "c", "zip": 75000.0]])["address"]?["zip"], 75000))
    }

    @Test("relationships cannot be written")
    func relationships() {
        expectError(["brand": ["id": 1]], attribute: "brand", message: "attribute 'brand' is a relationship and cannot be written")
        expectError(["brand": nil], attribute: "brand", message: "attribute 'brand' is a relationship and cannot be written")
        do {
            _ = try RecordValidator.validate(record(["id": 1, "products": []]), table: brand, schema: schema)
            Issue.record("expected an error")
        } catch {
            #expect(error.attribute == "products")
        }
    }

    @Test("a required relationship is not required in writes")
    func requiredRelationship() throws {
        #expect(product.attribute("brand")?.isRequired == true)
        _ = try validateProduct([:])
    }

    @Test("sealed tables refuse undeclared attributes; open tables keep them")
    func sealing() throws {
        expectError(["color": "red"], attribute: "color", message: "attribute 'color' is not declared in sealed table Product")
        let input: JSONValue = ["zeta": [1.5], "id": 1.0, "name": "b", "alpha": ["x": nil]]
        let result = try RecordValidator.validate(record(input), table: brand, schema: schema)
        #expect(result.keys == ["zeta", "id", "name", "alpha"])
        #expect(result["zeta"] == [1.5])
        #expect(result["alpha"] == ["x": nil])
        #expect(isInt(result["id"], 1))
    }

    @Test("primary key types")
    func primaryKeys() throws {
        expectError(["sku": 5], attribute: "sku", message: "attribute 'sku' must be an ID (string), got number 5")
        let counter = try #require(schema.table(typeName: "Counter"))
        let note = try #require(schema.table(typeName: "Note"))
        #expect(try RecordValidator.validate(record(["id": 9_007_199_254_740_993]), table: counter, schema: schema)["id"] == 9_007_199_254_740_993)
        func keyError(_ id: JSONValue, _ table: TableDefinition) -> String? {
            do {
                _ = try RecordValidator.validate(record(["id": id]), table: table, schema: schema)
                return nil
            } catch {
                return error.message
            }
        }
        #expect(keyError("5", brand) == "attribute 'id' must be an Int (32-bit integer), got string")
        #expect(keyError(5_000_000_000, brand) == "attribute 'id' must be an Int (32-bit integer), got number 5000000000")
        #expect(keyError("5", counter) == "attribute 'id' must be a Long (64-bit integer), got string")
        #expect(keyError(5, note) == "attribute 'id' must be a String (string), got number 5")
        #expect(keyError("k", note) == nil)
        #expect(keyError(5, brand) == nil)
    }

    @Test("validating a single attribute")
    func singleAttribute() throws {
        let born = try #require(product.attribute("born"))
        #expect(try RecordValidator.validate(0, for: born, schema: schema) == "1970-01-01T00:00:00.000Z")
        let name = try #require(product.attribute("name"))
        #expect(throws: RecordValidationError(attribute: "name", message: "attribute 'name' is required and cannot be null")) {
            try RecordValidator.validate(nil, for: name, schema: schema)
        }
        let created = try #require(product.attribute("created"))
        #expect(try RecordValidator.validate(nil, for: created, schema: schema) == .null)
    }
}
