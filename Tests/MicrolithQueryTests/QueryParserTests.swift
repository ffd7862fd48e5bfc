import MicrolithJSON
import Testing

@testable import MicrolithQuery

private func compare(_ path: [String], _ op: ComparisonOperator, _ value: QueryValue, at offset: Int) -> Condition {
    .compare(Comparison(path: path, op: op, value: value, offset: offset))
}

private func untyped(_ path: String, _ op: ComparisonOperator, _ text: String, at offset: Int) -> Condition {
    compare(path.split(separator: ".").map(String.init), op, .untyped(text), at: offset)
}

private func filter(_ raw: String) throws -> Condition? {
    try QueryParser.parse(raw).filter
}

private func value(_ raw: String) throws -> QueryValue? {
    guard case .compare(let c) = try filter(raw) else { return nil }
    return c.value
}

@Suite("QueryParser: comparisons and structure")
struct QueryParserStructureTests {
    @Test func emptyQueryIsEmpty() throws {
        #expect(try QueryParser.parse("") == Query())
    }

    @Test func simpleEquality() throws {
        #expect(try filter("name=Acme") == untyped("name", .eq, "Acme", at: 0))
        #expect(try filter("name==Acme") == untyped("name", .eq, "Acme", at: 0))
        #expect(try filter("name!=Acme") == untyped("name", .ne, "Acme", at: 0))
    }

    @Test(arguments: ComparisonOperator.allCases)
    func namedOperators(op: ComparisonOperator) throws {
        #expect(try filter("price=\(op.rawValue)=10") == untyped("price", op, "10", at: 0))
    }

    @Test func dottedPath() throws {
        #expect(try filter("brand.name=Acme") == untyped("brand.name", .eq, "Acme", at: 0))
        #expect(try filter("a.b.c=gt=1") == untyped("a.b.c", .gt, "1", at: 0))
    }

    @Test func andBindsTighterThanOr() throws {
        #expect(
            try filter("a=1|b=2&c=3")
                == .or([untyped("a", .eq, "1", at: 0), .and([untyped("b", .eq, "2", at: 4), untyped("c", .eq, "3", at: 8)])])
        )
        #expect(
            try filter("a=1&b=2|c=3")
                == .or([.and([untyped("a", .eq, "1", at: 0), untyped("b", .eq, "2", at: 4)]), untyped("c", .eq, "3", at: 8)])
        )
    }

    @Test func bracketsGroup() throws {
        let expected: Condition = .and([
            .or([untyped("category", .eq, "shoes", at: 1), untyped("category", .eq, "boots", at: 16)]),
            untyped("price", .lt, "100", at: 32),
        ])
        #expect(try filter("[category=shoes|category=boots]&price=lt=100") == expected)
    }

    @Test func parenthesesGroupLikeBrackets() throws {
        let expected: Condition = .and([
            .or([untyped("category", .eq, "shoes", at: 1), untyped("category", .eq, "boots", at: 16)]),
            untyped("price", .lt, "100", at: 32),
        ])
        #expect(try filter("(category=shoes|category=boots)&price=lt=100") == expected)
        #expect(try filter("price=lt=100&(category=shoes|category=boots)") != nil)
    }

    @Test func insideParenthesesACloseParenEndsTheValue() throws {
        #expect(try filter("(name=a%29b)") == untyped("name", .eq, "a)b", at: 1))
        #expect(try filter("name=a)b") == untyped("name", .eq, "a)b", at: 0))
        #expect(
            try filter("[(a=1|b=2)&c=3]")
                == .and([.or([untyped("a", .eq, "1", at: 2), untyped("b", .eq, "2", at: 6)]), untyped("c", .eq, "3", at: 11)]))
    }

    @Test func nestedGroupsOfTheSameKindFlatten() throws {
        #expect(
            try filter("[a=1&b=2]&c=3")
                == .and([untyped("a", .eq, "1", at: 1), untyped("b", .eq, "2", at: 5), untyped("c", .eq, "3", at: 10)])
        )
        #expect(try filter("[[a=1]]") == untyped("a", .eq, "1", at: 2))
        #expect(
            try filter("a=1|[b=2|c=3]")
                == .or([untyped("a", .eq, "1", at: 0), untyped("b", .eq, "2", at: 5), untyped("c", .eq, "3", at: 9)])
        )
    }

    @Test func chainedRanges() throws {
        #expect(try filter("price=gt=10&lt=20") == .and([untyped("price", .gt, "10", at: 0), untyped("price", .lt, "20", at: 12)]))
        #expect(
            try filter("price=ge=10&le=20&ne=15")
                == .and([untyped("price", .ge, "10", at: 0), untyped("price", .le, "20", at: 12), untyped("price", .ne, "15", at: 18)])
        )
        #expect(try filter("price=lt=10|gt=100") == .or([untyped("price", .lt, "10", at: 0), untyped("price", .gt, "100", at: 12)]))
        #expect(try filter("a.b=sw=x&ct=y") == .and([untyped("a.b", .sw, "x", at: 0), untyped("a.b", .ct, "y", at: 9)]))
    }

    @Test func operatorNamedAttributes() throws {
        // Without a previous comparison, or written with `==`, `lt` is an attribute.
        #expect(try filter("lt=20") == untyped("lt", .eq, "20", at: 0))
        #expect(try filter("a=1&lt==20") == .and([untyped("a", .eq, "1", at: 0), untyped("lt", .eq, "20", at: 4)]))
        #expect(try filter("a=1&lt=gt=20") == .and([untyped("a", .eq, "1", at: 0), untyped("lt", .gt, "20", at: 4)]))
        #expect(try filter("[a=1]&lt=5") == .and([untyped("a", .eq, "1", at: 1), untyped("lt", .eq, "5", at: 6)]))
        #expect(try filter("a=1&x.lt=5") == .and([untyped("a", .eq, "1", at: 0), untyped("x.lt", .eq, "5", at: 4)]))
    }

    @Test func valuesArePercentDecodedAfterSplitting() throws {
        #expect(try value("a=%26%7C%5B%5D%3D") == .untyped("&|[]="))
        #expect(try value("a=caf%C3%A9") == .untyped("café"))
        #expect(try value("a=x+y") == .untyped("x+y"))
        #expect(try value("a=x%20y") == .untyped("x y"))
        #expect(try value("a=") == .untyped(""))
        #expect(try value("a=(x)!") == .untyped("(x)!"))
        #expect(try value("a=foo:bar") == .untyped("foo:bar"))
        #expect(try filter("na%20me=1") == untyped("na me", .eq, "1", at: 0))
        #expect(try filter("a%2Eb=1") == compare(["a.b"], .eq, .untyped("1"), at: 0))
    }

    @Test func typedValues() throws {
        #expect(try value("a=null") == .typed(.null))
        #expect(try value("a=string:null") == .typed(.string("null")))
        #expect(try value("a=string:") == .typed(.string("")))
        #expect(try value("a=number:5") == .typed(.int(5)))
        #expect(try value("a=number:-12") == .typed(.int(-12)))
        #expect(try value("a=number:5.5") == .typed(.double(5.5)))
        #expect(try value("a=number:-1e3") == .typed(.double(-1000)))
        #expect(try value("a=number:99999999999999999999") == .typed(.double(1e20)))
        #expect(try value("a=boolean:true") == .typed(.bool(true)))
        #expect(try value("a=boolean:false") == .typed(.bool(false)))
        #expect(try value("a=date:2024-05-01") == .typed(.string("2024-05-01T00:00:00.000Z")))
        #expect(try value("a=date:2024-05-01T10:00:00%2B02:00") == .typed(.string("2024-05-01T08:00:00.000Z")))
        #expect(try value("a=date:0") == .typed(.string("1970-01-01T00:00:00.000Z")))
        #expect(try value("a=gt=number:1") == .typed(.int(1)))
    }

    @Test func typedValuesKeepTheirExactType() throws {
        // `.int(5)` and `.double(5)` are == as JSONValues, so check the case itself.
        guard case .typed(.int) = try value("a=number:5") else { Issue.record("expected an integer"); return }
        guard case .typed(.double) = try value("a=number:5.0") else { Issue.record("expected a double"); return }
    }
}

@Suite("QueryParser: functions")
struct QueryParserFunctionTests {
    @Test func select() throws {
        let q = try QueryParser.parse("select(a,b,rel{x,y{z}})")
        #expect(q.filter == nil)
        #expect(
            q.select == [
                SelectItem(name: "a"), SelectItem(name: "b"),
                SelectItem(name: "rel", children: [SelectItem(name: "x"), SelectItem(name: "y", children: [SelectItem(name: "z")])]),
            ]
        )
        #expect(try QueryParser.parse("select(na%20me)").select == [SelectItem(name: "na me")])
    }

    @Test func sort() throws {
        let q = try QueryParser.parse("sort(+a,-b,c.d)")
        #expect(q.sort == [SortKey(path: ["a"]), SortKey(path: ["b"], descending: true), SortKey(path: ["c", "d"])])
    }

    @Test func limit() throws {
        #expect(try QueryParser.parse("limit(5)").limit == Limit(start: 0, end: 5))
        #expect(try QueryParser.parse("limit(2,7)").limit == Limit(start: 2, end: 7))
        #expect(try QueryParser.parse("limit(3,3)").limit?.count == 0)
        #expect(try QueryParser.parse("limit(0)").limit == Limit(start: 0, end: 0))
    }

    @Test func functionsAnywhereAmongTerms() throws {
        let q = try QueryParser.parse("limit(5)&a=1&sort(-a)&b=gt=2&select(a)")
        #expect(q.filter == .and([untyped("a", .eq, "1", at: 9), untyped("b", .gt, "2", at: 22)]))
        #expect(q.limit == Limit(start: 0, end: 5))
        #expect(q.sort == [SortKey(path: ["a"], descending: true)])
        #expect(q.select == [SelectItem(name: "a")])

        let grouped = try QueryParser.parse("[a=1|b=2]&limit(3)")
        #expect(grouped.filter == .or([untyped("a", .eq, "1", at: 1), untyped("b", .eq, "2", at: 5)]))
        #expect(grouped.limit == Limit(start: 0, end: 3))
    }

    @Test func functionBreaksARangeChain() throws {
        let q = try QueryParser.parse("a=gt=1&limit(2)&lt=5")
        #expect(q.filter == .and([untyped("a", .gt, "1", at: 0), untyped("lt", .eq, "5", at: 16)]))
    }
}

@Suite("QueryParser: errors")
struct QueryParserErrorTests {
    static let cases: [(query: String, offset: Int, message: String)] = [
        ("[a=1", 0, "'[' is never closed"),
        ("[[a=1]", 0, "'[' is never closed"),
        ("a=1]", 3, "']' without a matching '['"),
        ("a=1&&b=2", 4, "expected a term before '&'"),
        ("a=1||b=2", 4, "expected a term before '|'"),
        ("a=1|", 4, "expected a term after '|'"),
        ("a=1&", 4, "expected a term after '&'"),
        ("|a=1", 0, "expected a term before '|'"),
        ("&", 0, "expected a term before '&'"),
        ("[]", 1, "expected a term before ']'"),
        ("[a=1]b=2", 5, "expected '&' or '|' but found 'b'"),
        ("[[a=1]b=2]", 6, "expected '&', '|' or ']' but found 'b'"),
        ("[a=1](", 5, "expected '&' or '|' but found '('"),
        ("=5", 0, "empty attribute name"),
        ("a=1&==5", 4, "empty attribute name"),
        ("!=5", 0, "empty attribute name"),
        ("a", 0, "expected an operator"),
        ("a=1&b", 4, "expected an operator"),
        ("a)", 1, "unexpected ')'"),
        ("a[b]=1", 1, "unexpected '['"),
        ("a!5", 2, "expected '=' after '!'"),
        ("a=foo=5", 1, "unknown operator '=foo='"),
        ("a=GT=5", 1, "unknown operator '=GT='"),
        ("a=5=6", 1, "unknown operator '=5='"),
        ("a=gt=1=2", 6, "'=' inside a value"),
        ("a=1[", 3, "'[' inside a value"),
        ("a..b=1", 2, "empty segment"),
        (".a=1", 0, "empty segment"),
        ("a.=1", 2, "empty segment"),
        ("a=%zz", 2, "bad percent escape"),
        ("a=x%4", 3, "bad percent escape"),
        ("a=%", 2, "bad percent escape"),
        ("a%g1=1", 1, "bad percent escape"),
        ("a=%FF", 2, "not valid UTF-8"),
        ("a=number:abc", 2, "'abc' is not a number"),
        ("a=number:", 2, "is not a number"),
        ("a=number:0x10", 2, "is not a number"),
        ("a=number:1.", 2, "is not a number"),
        ("b=1&a=boolean:yes", 6, "is not a boolean"),
        ("a=date:2023-02-29", 2, "is not an ISO 8601 date"),
        ("a=date:yesterday", 2, "is not an ISO 8601 date"),
        ("foo(1)", 0, "unknown function 'foo'"),
        ("a=1&Select(a)", 4, "unknown function 'Select'"),
        ("(a)", 1, "expected an operator"),
        ("(a=1", 0, "'(' is never closed"),
        ("(a=1]", 4, "expected '&', '|' or ')' but found ']'"),
        ("()", 1, "expected a term before ')'"),
        ("(select(a))", 1, "not allowed inside a group"),
        ("a=1&sort(a)&sort(b)", 12, "sort(...) appears more than once"),
        ("select(a)&select(b)", 10, "select(...) appears more than once"),
        ("limit(1)&limit(2)", 9, "limit(...) appears more than once"),
        ("[select(a)]", 1, "not allowed inside a group"),
        ("a=1|b=2&limit(1)", 8, "top-level '|'"),
        ("limit(1)&a=1|b=2", 0, "top-level '|'"),
        ("select(a)x", 9, "expected '&' or '|' but found 'x'"),
        ("limit(-1)", 6, "must not be negative"),
        ("limit(1.5)", 6, "'1.5' is not a non-negative integer"),
        ("limit(5,2)", 8, "limit end 2 is before its start 5"),
        ("limit(1,2,3)", 9, "one or two numbers"),
        ("limit()", 6, "expected a number"),
        ("limit(1,)", 8, "expected a number"),
        ("limit(99999999999999999999)", 6, "too large"),
        ("limit(5", 5, "'(' is never closed"),
        ("limit(5&a=1)", 7, "expected ',' or ')' but found '&'"),
        ("select()", 7, "empty attribute list"),
        ("select(a,)", 9, "expected an attribute name"),
        ("select(a,a)", 9, "'a' is selected twice"),
        ("select(a{b)", 10, "expected ',' or '}' but found ')'"),
        ("select(a{})", 9, "empty attribute list"),
        ("select(a", 6, "'(' is never closed"),
        ("select(a{b", 8, "'{' is never closed"),
        ("select(a.b)", 8, "rel{attr}"),
        ("select(a=1)", 8, "expected ',' or ')' but found '='"),
        ("sort()", 5, "sort() needs at least one attribute"),
        ("sort(a,)", 7, "expected an attribute name"),
        ("sort(-)", 6, "expected an attribute name"),
        ("sort(a..b)", 7, "empty segment"),
        ("sort(a", 4, "'(' is never closed"),
    ]

    @Test(arguments: cases)
    func malformedQueriesReportTheOffset(query: String, offset: Int, message: String) {
        #expect {
            _ = try QueryParser.parse(query)
        } throws: { error in
            guard let error = error as? QuerySyntaxError else { return false }
            #expect(error.offset == offset, "offset for \(query): \(error)")
            #expect(error.message.contains(message), "message for \(query): \(error)")
            return true
        }
    }

    @Test func description() {
        let error = QuerySyntaxError(offset: 4, message: "expected a term before '&'")
        #expect(error.description == "query syntax error at offset 4: expected a term before '&'")
    }

    @Test func offsetsCountCharacters() {
        // `é` is one character (two UTF-8 bytes).
        #expect(throws: QuerySyntaxError(offset: 4, message: "expected a term before '&'")) {
            _ = try QueryParser.parse("é=1&&b=2")
        }
    }

    @Test func deepNestingIsAnErrorNotACrash() throws {
        let select = "select(" + String(repeating: "a{", count: 40) + "b" + String(repeating: "}", count: 40) + ")"
        #expect(throws: QuerySyntaxError.self) { _ = try QueryParser.parse(select) }
        let groups = String(repeating: "[", count: 100_000) + "a=1" + String(repeating: "]", count: 100_000)
        #expect(throws: QuerySyntaxError(offset: 64, message: "groups are nested more than 64 deep")) { _ = try QueryParser.parse(groups) }
        let fine = String(repeating: "[", count: 64) + "a=1" + String(repeating: "]", count: 64)
        #expect(try QueryParser.parse(fine).filter == .compare(Comparison(path: ["a"], op: .eq, value: .untyped("1"), offset: 64)))
    }

    /// Every prefix and every single-character corruption of valid queries either parses or
    /// throws a ``QuerySyntaxError`` that points inside the input and says what is wrong; the
    /// same input always gets the same answer.
    @Test func garbageNeverCrashes() {
        let samples = [
            "[category=shoes|category=boots]&price=lt=100&select(a,rel{x,y{z}})&sort(+a,-b.c)&limit(1,5)",
            "a=gt=number:1&lt=date:2024-01-01T00:00:00Z|b!=%41%C3%A9",
        ]
        let noise: [Character] = ["[", "]", "(", ")", "{", "}", "&", "|", "=", "!", "%", ",", ".", "+", "-", "é"]
        var parsed = 0
        var refused = 0
        func check(_ text: String) {
            do {
                let query = try QueryParser.parse(text)
                parsed += 1
                #expect((try? QueryParser.parse(text)) == query, "\(text) parsed differently twice")
            } catch {
                refused += 1
                #expect((0...text.count).contains(error.offset), "\(error) points outside the \(text.count) characters of \(text)")
                #expect(!error.message.isEmpty, "\(text)")
                #expect(throws: error, "\(text) was refused differently twice") { try QueryParser.parse(text) }
            }
        }
        for sample in samples {
            #expect(throws: Never.self) { try QueryParser.parse(sample) }
            let chars = Array(sample)
            for end in 0...chars.count { check(String(chars[..<end])) }
            for i in chars.indices {
                for c in noise {
                    var corrupted = chars
                    corrupted[i] = c
                    check(String(corrupted))
                }
            }
        }
        #expect(parsed > 0 && refused > 0, "\(parsed) parsed, \(refused) refused: the inputs should give both")
    }
}
