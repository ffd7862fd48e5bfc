import MicrolithJSON
import MicrolithQuery
import MicrolithSchema
import Testing

private let here = SourceLocation(file: "schema.graphql", line: 1, column: 1)

private func attr(
    _ name: String, _ type: AttributeType, primaryKey: Bool = false, relationship: Relationship? = nil
) -> AttributeDefinition {
    AttributeDefinition(name: name, type: type, isPrimaryKey: primaryKey, relationship: relationship, location: here)
}

private func table(_ name: String, sealed: Bool, primaryKey: String = "id", _ attributes: [AttributeDefinition]) -> TableDefinition {
    TableDefinition(
        typeName: name, name: name, database: "data", exportName: name, expiration: nil, isSealed: sealed,
        primaryKey: primaryKey, attributes: attributes, location: here
    )
}

private let product = table(
    "Product", sealed: true,
    [
        attr("id", .id, primaryKey: true),
        attr("name", .string),
        attr("price", .float),
        attr("stock", .int),
        attr("views", .long),
        attr("active", .boolean),
        attr("released", .date),
        attr("tags", .list(.string)),
        attr("sizes", .list(.int)),
        attr("brandId", .id),
        attr("brand", .object("Brand"), relationship: .from("brandId")),
        attr("related", .list(.object("Product")), relationship: .to("relatedTo")),
        attr("dims", .object("Dimensions")),
        attr("extra", .any),
    ]
)

private let brand = table(
    "Brand", sealed: true,
    [
        attr("id", .long, primaryKey: true),
        attr("name", .string),
        attr("products", .list(.object("Product")), relationship: .to("brandId")),
    ]
)

private let note = table("Note", sealed: false, [attr("id", .int, primaryKey: true), attr("text", .string)])

private let dimensions = NestedTypeDefinition(
    name: "Dimensions", isSealed: true, attributes: [attr("width", .float), attr("unit", .string)], location: here
)

private let schema = Schema(tables: [product, brand, note], nestedTypes: ["Dimensions": dimensions])

private func bind(_ raw: String, to t: TableDefinition = product) throws -> Query {
    try QueryParser.parse(raw).bound(to: t, schema: schema)
}

/// The single comparison value of a bound one-term query.
private func bound(_ raw: String, to t: TableDefinition = product) throws -> QueryValue? {
    guard case .compare(let c) = try bind(raw, to: t).filter else { return nil }
    return c.value
}

private func bindingError(_ raw: String, to t: TableDefinition = product) -> QueryError? {
    do {
        _ = try bind(raw, to: t)
        return nil
    } catch let error as QueryError {
        return error
    } catch {
        return nil
    }
}

private func allTyped(_ condition: Condition?) -> Bool {
    switch condition {
    case nil: return true
    case .and(let terms)?, .or(let terms)?: return terms.allSatisfy(allTyped)
    case .compare(let c)?:
        if case .typed = c.value { return true }
        return false
    }
}

@Suite("Query.bound(to:schema:)")
struct QueryBindingTests {
    @Test func convertsToDeclaredTypes() throws {
        #expect(try bound("name=12") == .typed(.string("12")))
        #expect(try bound("id=12") == .typed(.string("12")))
        #expect(try bound("brandId=7") == .typed(.string("7")))
        #expect(try bound("stock=7") == .typed(.int(7)))
        #expect(try bound("stock=-2147483648") == .typed(.int(-2_147_483_648)))
        #expect(try bound("views=3000000000") == .typed(.int(3_000_000_000)))
        #expect(try bound("active=true") == .typed(.bool(true)))
        #expect(try bound("active=false") == .typed(.bool(false)))
        #expect(try bound("released=2024-01-02T03:04:05Z") == .typed(.string("2024-01-02T03:04:05.000Z")))
        #expect(try bound("released=1000") == .typed(.string("1970-01-01T00:00:01.000Z")))
        #expect(try bound("tags=red") == .typed(.string("red")))
        #expect(try bound("sizes=42") == .typed(.int(42)))
        #expect(try bound("extra=5") == .typed(.string("5")))
        #expect(try bound("dims=5") == .typed(.string("5")))
    }

    @Test func floatKeepsIntegersIntegral() throws {
        guard case .typed(.int(5)) = try bound("price=5") else { Issue.record("5 should be an integer"); return }
        guard case .typed(.double(5.5)) = try bound("price=gt=5.5") else { Issue.record("5.5 should be a double"); return }
        guard case .typed(.double(-1500)) = try bound("price=-1.5e3") else { Issue.record("-1.5e3 should be a double"); return }
    }

    @Test func followsRelationshipsAndNestedTypes() throws {
        #expect(try bound("brand.name=Acme") == .typed(.string("Acme")))
        #expect(try bound("brand.id=5") == .typed(.int(5)))
        #expect(try bound("related.stock=lt=3") == .typed(.int(3)))
        #expect(try bound("related.brand.id=9") == .typed(.int(9)))
        #expect(try bound("dims.width=2.5") == .typed(.double(2.5)))
        #expect(try bound("extra.deep.er=1") == .typed(.string("1")))
        #expect(try bound("products.price=3", to: brand) == .typed(.int(3)))
    }

    @Test func startsWithAndContainsStayStrings() throws {
        #expect(try bound("price=sw=5") == .typed(.string("5")))
        #expect(try bound("released=ct=2024") == .typed(.string("2024")))
        #expect(try bound("active=sw=t") == .typed(.string("t")))
    }

    @Test func typedValuesAreKept() throws {
        #expect(try bound("price=string:5") == .typed(.string("5")))
        #expect(try bound("name=number:5") == .typed(.int(5)))
        #expect(try bound("stock=null") == .typed(.null))
        #expect(try bound("active=boolean:true") == .typed(.bool(true)))
    }

    @Test func unsealedTablesAcceptUndeclaredAttributesAsStrings() throws {
        #expect(try bound("color=red", to: note) == .typed(.string("red")))
        #expect(try bound("meta.a.b=1", to: note) == .typed(.string("1")))
        #expect(try bound("id=4", to: note) == .typed(.int(4)))
        #expect(try bind("select(anything)&sort(whatever.x)", to: note).select == [SelectItem(name: "anything")])
    }

    @Test func everyValueIsTypedAfterBinding() throws {
        let q = try bind("[name=a|price=5]&stock=gt=1&lt=9&active=true&released=2024-01-01&brand.name=x&tags!=y&extra=z")
        #expect(allTyped(q.filter))
        #expect(!allTyped(try QueryParser.parse("name=a").filter))
    }

    @Test func keepsStructureOffsetsAndFunctions() throws {
        let q = try bind("stock=gt=1&lt=9&select(name)&sort(-price)&limit(2)")
        #expect(
            q.filter
                == .and([
                    .compare(Comparison(path: ["stock"], op: .gt, value: .typed(.int(1)), offset: 0)),
                    .compare(Comparison(path: ["stock"], op: .lt, value: .typed(.int(9)), offset: 11)),
                ])
        )
        #expect(q.select == [SelectItem(name: "name")])
        #expect(q.sort == [SortKey(path: ["price"], descending: true)])
        #expect(q.limit == Limit(start: 0, end: 2))
    }

    static let conversionErrors: [(query: String, offset: Int, message: String)] = [
        ("stock=x", 0, "'x' is not a 32-bit integer for Int attribute 'stock'"),
        ("stock=1.5", 0, "not a 32-bit integer"),
        ("stock=3000000000", 0, "not a 32-bit integer"),
        ("views=99999999999999999999", 0, "not a 64-bit integer"),
        ("name=a&price=cheap", 7, "'cheap' is not a number for Float attribute 'price'"),
        ("price=1e999", 0, "not a number"),
        ("active=yes", 0, "not a boolean"),
        ("released=2024-13-01", 0, "not an ISO 8601 date"),
        ("sizes=big", 0, "not a 32-bit integer for [Int] attribute 'sizes'"),
        ("brand.id=x", 0, "not a 64-bit integer for Long attribute 'brand.id'"),
        ("nope=1", 0, "unknown attribute 'nope' in sealed table 'Product'"),
        ("name=x&nope.deep=1", 7, "unknown attribute 'nope'"),
        ("brand.nope=1", 0, "unknown attribute 'nope' in sealed table 'Brand'"),
        ("dims.depth=1", 0, "unknown attribute 'depth' in sealed type 'Dimensions'"),
        ("name.first=x", 0, "'name' is a String attribute, not a relationship or nested object"),
        ("tags.x=1", 0, "'tags' is a [String] attribute"),
        ("brand=5", 0, "cannot compare relationship 'brand' itself"),
        ("brand!=null", 0, "cannot compare relationship 'brand' itself"),
    ]

    @Test(arguments: conversionErrors)
    func errorsCarryTheComparisonOffset(query: String, offset: Int, message: String) {
        let error = bindingError(query)
        #expect(error?.offset == offset, "\(query): \(String(describing: error))")
        #expect(error?.message.contains(message) == true, "\(query): \(String(describing: error))")
    }

    static let functionErrors: [(query: String, message: String)] = [
        ("select(nope)", "cannot select unknown attribute 'nope' of sealed table 'Product'"),
        ("select(name{x})", "'name' is not a relationship of table 'Product'"),
        ("select(dims{width})", "'dims' is not a relationship"),
        ("select(brand{name,nope})", "cannot select unknown attribute 'nope' of sealed table 'Brand'"),
        ("select(related{brand{nope}})", "unknown attribute 'nope' of sealed table 'Brand'"),
        ("sort(brand)", "cannot sort by relationship 'brand'"),
        ("sort(name,-related)", "cannot sort by relationship 'related'"),
        ("sort(nope)", "unknown attribute 'nope'"),
        ("sort(price.x)", "'price' is a Float attribute"),
    ]

    @Test(arguments: functionErrors)
    func functionErrorsHaveNoOffset(query: String, message: String) {
        let error = bindingError(query)
        #expect(error != nil, "\(query) should fail")
        #expect(error?.offset == nil)
        #expect(error?.message.contains(message) == true, "\(query): \(String(describing: error))")
    }

    @Test func unknownAttributesOfSealedTablesAreListedWithTheDeclaredOnes() {
        for query in ["sort(+nosuch)", "nosuch=1", "select(nosuch)"] {
            let message = bindingError(query)?.message ?? ""
            #expect(message.contains("'nosuch'") && message.contains("its attributes are id, name, price, stock"), "\(query): \(message)")
        }
        let nested = bindingError("dims.depth=1")?.message ?? ""
        #expect(nested.contains("its attributes are width, unit"), "\(nested)")
    }

    @Test func undeclaredAttributesOfOpenTablesAreReportedNotRefused() throws {
        let query = try bind("color=red&text=a&meta.x=1&sort(+nosuch,-color,text)", to: note)
        #expect(
            query.undeclaredAttributes(in: note, schema: schema) == [
                "'color' (table 'Note' declares id, text)", "'meta' (table 'Note' declares id, text)",
                "'nosuch' (table 'Note' declares id, text)",
            ])
        // Declared paths, and paths below an Any attribute, are not reported.
        let declared = try bind("name=a&extra.anything=1&brand.name=b&sort(-price)")
        #expect(declared.undeclaredAttributes(in: product, schema: schema).isEmpty)
    }

    @Test func childrenOnUndeclaredAttributesOfUnsealedTables() {
        #expect(bindingError("select(x{y})", to: note)?.message.contains("not a relationship") == true)
    }

    @Test func validFunctions() throws {
        let q = try bind("select(name,brand{name,products{id}},related{id})&sort(brand.name,-dims.width)")
        #expect(q.select?.count == 3)
        #expect(q.sort.count == 2)
    }

    @Test func descriptions() {
        #expect(QueryError(message: "m", offset: 3).description == "query error at offset 3: m")
        #expect(QueryError(message: "m").description == "query error: m")
    }
}
