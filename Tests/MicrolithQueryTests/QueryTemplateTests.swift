import MicrolithJSON
import Testing

@testable import MicrolithQuery

/// `query` with every comparison's offset set to 0 (a template and the same query written out
/// place their comparisons at different offsets).
func withoutOffsets(_ query: Query) -> Query {
    func strip(_ c: Condition) -> Condition {
        switch c {
        case .and(let terms): return .and(terms.map(strip))
        case .or(let terms): return .or(terms.map(strip))
        case .compare(var comparison):
            comparison.offset = 0
            return .compare(comparison)
        }
    }
    var result = query
    result.filter = query.filter.map(strip)
    return result
}

@Suite("QueryTemplate: placeholders filled with values")
struct QueryTemplateTests {
    @Test func placeholdersAreNumberedInTheOrderWrittenAndFilledSo() throws {
        let template = try QueryParser.parseTemplate("categoryId=?&position=gt=?&lt=?&sort(+position)&limit(4)")
        #expect(template.placeholders.count == 3)
        let filled = try template.filled(with: ["c&1".queryValue, 5.queryValue, "9".queryValue])
        let written = try QueryParser.parse("categoryId=c%261&position=gt=number:5&lt=9&sort(+position)&limit(4)")
        #expect(withoutOffsets(filled) == withoutOffsets(written), "a value needs no escaping, and its Swift type is kept")
    }

    @Test func placeholdersInsideGroupsAndAlternatives() throws {
        let template = try QueryParser.parseTemplate("[kind=?|kind=?]&rank=ge=?")
        let filled = try template.filled(with: ["a".queryValue, Optional<String>.none.queryValue, true.queryValue])
        #expect(withoutOffsets(filled) == withoutOffsets(try QueryParser.parse("[kind=a|kind=null]&rank=ge=boolean:true")))
    }

    @Test func onlyALoneQuestionMarkIsAPlaceholder() throws {
        let template = try QueryParser.parseTemplate("a=%3F&b=??&c=?x&d=?")
        #expect(template.placeholders.count == 1)
        let filled = try template.filled(with: ["v".queryValue])
        #expect(withoutOffsets(filled) == withoutOffsets(try QueryParser.parse("a=%3F&b=??&c=?x&d=v")))
    }

    @Test func aPlainParseKeepsAQuestionMarkAsText() throws {
        #expect(try QueryParser.parse("a=?").filter == .compare(Comparison(path: ["a"], op: .eq, value: .untyped("?"), offset: 0)))
    }

    @Test func theNumberOfArgumentsMustMatch() throws {
        let template = try QueryParser.parseTemplate("a=?&b=?")
        #expect(throws: QueryError(message: "the query has 2 placeholders ('?') but 1 argument was given")) {
            _ = try template.filled(with: [1.queryValue])
        }
        #expect(throws: QueryError.self) { _ = try template.filled(with: [1, 2, 3].map(\.queryValue)) }
        #expect(try QueryParser.parseTemplate("sort(+a)").filled(with: []) == (try QueryParser.parse("sort(+a)")))
    }

    @Test func syntaxErrorsAreTheParsersOwn() throws {
        #expect(throws: QuerySyntaxError.self) { _ = try QueryParser.parseTemplate("a=?&sort(+a") }
    }
}
