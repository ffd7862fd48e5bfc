import MicrolithJSON
import MicrolithQuery
import Testing

private func object(_ value: JSONValue) -> JSONObject {
    value.objectValue ?? JSONObject()
}

private func cmp(_ path: String, _ op: ComparisonOperator, _ value: JSONValue) -> Condition {
    .compare(Comparison(path: path.split(separator: ".").map(String.init), op: op, value: .typed(value)))
}

private func matches(_ condition: Condition, _ record: JSONValue) -> Bool {
    QueryEvaluator.matches(condition, record: object(record), resolve: QueryEvaluator.defaultResolve)
}

private func matches(_ query: String, _ record: JSONValue) throws -> Bool {
    guard let filter = try QueryParser.parse(query).filter else { return true }
    return matches(filter, record)
}

@Suite("QueryEvaluator.matches")
struct QueryEvaluatorMatchTests {
    let product: JSONValue = [
        "id": "p1", "name": "Acme Corp", "price": 5, "weight": 2.5, "active": true, "tags": ["a", "b"],
        "empty": [], "nothing": nil, "brand": ["name": "Acme", "country": "FR"],
    ]

    @Test func equalityComparesNumbersNumerically() {
        #expect(matches(cmp("price", .eq, 5.0), product))
        #expect(matches(cmp("price", .eq, 5), product))
        #expect(matches(cmp("weight", .eq, 2.5), product))
        #expect(!matches(cmp("price", .eq, 5.5), product))
        #expect(!matches(cmp("price", .eq, "5"), product))
        #expect(matches(cmp("price", .ge, 5.0), product))
        #expect(matches(cmp("weight", .lt, 3), product))
        #expect(!matches(cmp("weight", .gt, 3), product))
    }

    @Test func missingIsNull() {
        #expect(matches(cmp("missing", .eq, nil), product))
        #expect(matches(cmp("nothing", .eq, nil), product))
        #expect(!matches(cmp("price", .eq, nil), product))
        #expect(matches(cmp("price", .ne, nil), product))
        #expect(!matches(cmp("missing", .ne, nil), product))
        #expect(!matches(cmp("missing", .lt, 10), product))
        #expect(!matches(cmp("missing", .ge, nil), product))
        #expect(!matches(cmp("price", .gt, nil), product))
        #expect(matches(cmp("brand.missing", .eq, nil), product))
        #expect(matches(cmp("price.deeper", .eq, nil), product))
    }

    @Test func arraysMatchWhenAnyElementMatches() {
        #expect(matches(cmp("tags", .eq, "a"), product))
        #expect(matches(cmp("tags", .eq, "b"), product))
        #expect(!matches(cmp("tags", .eq, "c"), product))
        #expect(matches(cmp("tags", .gt, "a"), product))
        #expect(!matches(cmp("tags", .gt, "b"), product))
        #expect(matches(cmp("tags", .sw, "b"), product))
        #expect(matches(cmp("tags", .eq, ["a", "b"]), product))
    }

    @Test func notEqualIsExactlyNotEqual() {
        #expect(!matches(cmp("tags", .ne, "a"), product))
        #expect(matches(cmp("tags", .ne, "c"), product))
        #expect(!matches(cmp("empty", .eq, nil), product))
        #expect(matches(cmp("empty", .ne, nil), product))
        #expect(!matches(cmp("empty", .eq, "x"), product))

        let samples: [JSONValue] = [nil, true, false, 0, 1, 1.0, 1.5, "", "a", "1", [], [1, "a"], [nil], ["k": 1]]
        for recordValue in samples {
            for queryValue in samples {
                let record: JSONValue = ["v": recordValue]
                #expect(matches(cmp("v", .ne, queryValue), record) == !matches(cmp("v", .eq, queryValue), record))
            }
        }
    }

    @Test func orderingNeedsTwoValuesOfTheSameKind() {
        #expect(!matches(cmp("price", .gt, "1"), product))
        #expect(!matches(cmp("price", .lt, "9"), product))
        #expect(!matches(cmp("name", .gt, 1), product))
        #expect(!matches(cmp("active", .gt, 0), product))
        #expect(matches(cmp("active", .gt, false), product))
        #expect(!matches(cmp("active", .gt, true), product))
        #expect(matches(cmp("active", .ge, true), product))
        #expect(matches(cmp("active", .le, true), product))
        #expect(!matches(cmp("brand", .gt, "a"), product))
    }

    @Test func stringsCompareByUTF8Bytes() {
        // "é" (C3 A9) sorts after "z" (7A).
        #expect(matches(cmp("s", .gt, "z"), ["s": "é"]))
        #expect(matches(cmp("s", .lt, "a"), ["s": "Z"]))
        // Decomposed "e\u{301}" (65 CC 81) is a different string from "é" and sorts before "f";
        // Swift's String `<` and `==` would treat it as "é".
        #expect(matches(cmp("s", .lt, "f"), ["s": "e\u{301}"]))
        #expect(!matches(cmp("s", .eq, "\u{e9}"), ["s": "e\u{301}"]))
        #expect(matches(cmp("s", .ne, "\u{e9}"), ["s": "e\u{301}"]))
        #expect(!matches(cmp("s", .sw, "\u{e9}"), ["s": "e\u{301}x"]))
        #expect(matches(cmp("s", .sw, "e"), ["s": "e\u{301}x"]))
    }

    @Test func startsWithAndContains() {
        #expect(matches(cmp("name", .sw, "Acme"), product))
        #expect(!matches(cmp("name", .sw, "Corp"), product))
        #expect(matches(cmp("name", .ct, "me C"), product))
        #expect(matches(cmp("name", .ct, ""), product))
        #expect(matches(cmp("name", .ct, "Corp"), product))
        #expect(!matches(cmp("name", .ct, "Corps"), product))
        #expect(!matches(cmp("price", .ct, "5"), product))
        #expect(!matches(cmp("name", .sw, 5), product))
        #expect(!matches(cmp("missing", .ct, ""), product))
    }

    @Test func largeIntegersAgainstDoublesCompareExactly() {
        let big: JSONValue = ["n": .int(Int64.max)]
        #expect(matches(cmp("n", .lt, .double(9_223_372_036_854_775_808.0)), big))
        #expect(!matches(cmp("n", .eq, .double(9_223_372_036_854_775_808.0)), big))
        let near: JSONValue = ["n": .int(9_007_199_254_740_993)]
        #expect(matches(cmp("n", .gt, .double(9_007_199_254_740_992.0)), near))
        #expect(!matches(cmp("n", .eq, .double(9_007_199_254_740_992.0)), near))
        #expect(matches(cmp("n", .gt, .double(-1e300)), near))
        #expect(matches(cmp("n", .lt, .double(1e300)), near))
        #expect(matches(cmp("n", .gt, 2.5), ["n": 3]))
        #expect(matches(cmp("n", .lt, -2.5), ["n": -3]))
        #expect(!matches(cmp("n", .lt, -3.5), ["n": -3]))
    }

    @Test func untypedValuesAreStrings() {
        let c = Condition.compare(Comparison(path: ["price"], op: .eq, value: .untyped("5")))
        #expect(!matches(c, product))
        #expect(matches(.compare(Comparison(path: ["name"], op: .eq, value: .untyped("Acme Corp"))), product))
    }

    @Test func booleanStructure() throws {
        #expect(matches(.and([]), product))
        #expect(!matches(.or([]), product))
        #expect(try matches("[price=number:1|price=number:5]&name=sw=Acme", product))
        #expect(!(try matches("[price=number:1|price=number:2]&name=sw=Acme", product)))
        #expect(try matches("price=number:9|tags=b", product))
        #expect(try matches("price=gt=number:1&lt=number:9", product))
        #expect(!(try matches("price=gt=number:5&lt=number:9", product)))
        #expect(try matches("brand.country=FR", product))
    }
}

@Suite("QueryEvaluator.defaultResolve")
struct QueryEvaluatorResolveTests {
    let record = object([
        "a": ["b": ["c": 1]], "s": "text",
        "items": [["sku": "x", "tags": ["t1", "t2"]], ["sku": "y", "tags": ["t3"]], ["tags": []], 7],
    ])

    @Test func walksNestedObjects() {
        #expect(QueryEvaluator.defaultResolve(record, ["a", "b", "c"]) == 1)
        #expect(QueryEvaluator.defaultResolve(record, ["a", "b"]) == ["c": 1])
        #expect(QueryEvaluator.defaultResolve(record, ["a", "x"]) == nil)
        #expect(QueryEvaluator.defaultResolve(record, ["s", "x"]) == nil)
        #expect(QueryEvaluator.defaultResolve(record, ["zz"]) == nil)
        #expect(QueryEvaluator.defaultResolve(record, []) == .object(record))
    }

    @Test func mapsOverArraysAndFlattens() {
        #expect(QueryEvaluator.defaultResolve(record, ["items", "sku"]) == ["x", "y", nil, nil])
        // The empty `tags` contributes nothing; the scalar element 7 has no `tags`, so it gives null.
        #expect(QueryEvaluator.defaultResolve(record, ["items", "tags"]) == ["t1", "t2", "t3", nil])
        #expect(QueryEvaluator.defaultResolve(record, ["items"]).arrayValue?.count == 4)
        #expect(matches(cmp("items.tags", .eq, "t3"), .object(record)))
        #expect(matches(cmp("items.sku", .eq, "y"), .object(record)))
        #expect(!matches(cmp("items.sku", .ne, "y"), .object(record)))
    }
}

@Suite("QueryEvaluator.compare and sort")
struct QueryEvaluatorSortTests {
    @Test func totalOrder() {
        let ascending: [JSONValue] = [
            nil, false, true, .double(-.infinity), -5, -1.5, 0, 0.5, 1, 2.5, 3, "", "A", "Z", "a", "e\u{301}", "z", "é", "\u{1F600}",
            // Objects order by their JSON text: `{"a":1}` < `{"b":0}` < `{}` since `"` < `b` < `}`.
            [], [nil], [1], [1, 2], [1, "a"], [2], ["a"], ["a": 1], ["a": 2], ["b": 0], [:],
        ]
        for (i, a) in ascending.enumerated() {
            for (j, b) in ascending.enumerated() {
                let c = QueryEvaluator.compare(a, b)
                #expect(c.signum() == (i == j ? 0 : (i < j ? -1 : 1)), "\(a) vs \(b)")
            }
        }
        #expect(QueryEvaluator.compare(1, 1.0) == 0)
        #expect(QueryEvaluator.compare(["a": 1, "b": 2], ["a": 1, "b": 2]) == 0)
    }

    let records: [JSONObject] = [
        object(["id": 3, "price": 10, "name": "c"]),
        object(["id": 1, "price": 10, "name": "a"]),
        object(["id": 2, "price": 5.5, "name": "b"]),
        object(["id": 5, "name": "e"]),
        object(["id": 4, "price": "10", "name": "d"]),
    ]

    private func ids(_ records: [JSONObject]) -> [JSONValue] { records.map { $0["id"] ?? nil } }

    @Test func sortAscendingWithPrimaryKeyTieBreak() {
        var r = records
        QueryEvaluator.sort(&r, by: [SortKey(path: ["price"])], primaryKey: "id", resolve: QueryEvaluator.defaultResolve)
        #expect(ids(r) == [5, 2, 1, 3, 4])
    }

    @Test func sortDescendingKeepsTieBreakAscending() {
        var r = records
        QueryEvaluator.sort(&r, by: [SortKey(path: ["price"], descending: true)], primaryKey: "id", resolve: QueryEvaluator.defaultResolve)
        #expect(ids(r) == [4, 1, 3, 2, 5])
    }

    @Test func multipleKeys() {
        var r = [
            object(["id": "a", "g": 1, "n": 2]), object(["id": "b", "g": 2, "n": 1]), object(["id": "c", "g": 1, "n": 1]),
            object(["id": "d", "g": 2, "n": 3]),
        ]
        QueryEvaluator.sort(
            &r, by: [SortKey(path: ["g"], descending: true), SortKey(path: ["n"])], primaryKey: "id",
            resolve: QueryEvaluator.defaultResolve
        )
        #expect(ids(r) == ["b", "d", "c", "a"])
    }

    @Test func noKeysSortsByPrimaryKeyAndEqualKeysKeepInputOrder() {
        var r = records
        QueryEvaluator.sort(&r, by: [], primaryKey: "id", resolve: QueryEvaluator.defaultResolve)
        #expect(ids(r) == [1, 2, 3, 4, 5])

        var same = (0..<50).map { i in object(["id": 1, "n": .int(Int64(i))]) }
        QueryEvaluator.sort(&same, by: [SortKey(path: ["id"])], primaryKey: "id", resolve: QueryEvaluator.defaultResolve)
        #expect(same.map { $0["n"] ?? nil } == (0..<50).map { JSONValue.int(Int64($0)) })
    }

    @Test func sortUsesTheResolver() {
        var r = records
        // A resolver that ranks by name length backwards: every name has one character, so ties break on id.
        QueryEvaluator.sort(&r, by: [SortKey(path: ["name"], descending: true)], primaryKey: "id") { record, path in
            .int(Int64(record[path[0]]?.stringValue?.count ?? 0))
        }
        #expect(ids(r) == [1, 2, 3, 4, 5])
    }
}

@Suite("QueryEvaluator.project")
struct QueryEvaluatorProjectTests {
    let brands: [String: JSONValue] = ["b1": ["id": "b1", "name": "Acme", "country": "FR", "ownerId": "o1"]]
    let owners: [String: JSONValue] = ["o1": ["id": "o1", "name": "Olga", "age": 50]]

    func related(_ record: JSONObject, _ name: String) -> JSONValue {
        switch name {
        case "brand": return record["brandId"].flatMap { $0.stringValue.flatMap { brands[$0] } } ?? nil
        case "owner": return record["ownerId"].flatMap { $0.stringValue.flatMap { owners[$0] } } ?? nil
        case "variants": return ["v1", ["id": "v1", "size": 40, "color": "red"], ["id": "v2", "size": 41]]
        default: return nil
        }
    }

    @Test func plainItemsCopyPresentMembersInSelectOrder() {
        let record = object(["id": "p1", "name": "Shoe", "price": 10, "nothing": nil])
        let projected = QueryEvaluator.project(
            record, select: [SelectItem(name: "price"), SelectItem(name: "id"), SelectItem(name: "missing"), SelectItem(name: "nothing")],
            related: related
        )
        #expect(projected.keys == ["price", "id", "nothing"])
        #expect(projected == object(["price": 10, "id": "p1", "nothing": nil]))
    }

    @Test func childrenProjectRelatedRecordsRecursively() {
        let record = object(["id": "p1", "brandId": "b1"])
        let select = [
            SelectItem(name: "id"),
            SelectItem(name: "brand", children: [SelectItem(name: "name"), SelectItem(name: "owner", children: [SelectItem(name: "name")])]),
            SelectItem(name: "variants", children: [SelectItem(name: "size")]),
        ]
        let projected = QueryEvaluator.project(record, select: select, related: related)
        let expected: JSONValue = [
            "id": "p1",
            "brand": ["name": "Acme", "owner": ["name": "Olga"]],
            "variants": ["v1", ["size": 40], ["size": 41]],
        ]
        #expect(.object(projected) == expected)
        #expect(projected.keys == ["id", "brand", "variants"])
    }

    @Test func missingRelationIsNull() {
        let record = object(["id": "p2"])
        let projected = QueryEvaluator.project(record, select: [SelectItem(name: "brand", children: [SelectItem(name: "name")])], related: related)
        #expect(projected == object(["brand": nil]))
    }
}
