import Foundation
import MicrolithQuery
import MicrolithSchema
import MicrolithStore
import Testing

@testable import MicrolithModules

@Suite struct BoundQueriesTests {
    func withTable(_ body: (Store, TableLayout) throws -> Void) throws {
        let folder = (NSTemporaryDirectory() as NSString).appendingPathComponent("microlith-bound-\(UUID().uuidString)")
        let schema = try SchemaParser.parse(
            "type Thing @table { id: ID @primaryKey\n rank: Int @indexed\n kind: String @indexed }", file: "schema.graphql")
        let store = try Store.open(schema: schema, configuration: StoreConfiguration(directory: folder, durability: .normal))
        defer {
            store.close()
            try? FileManager.default.removeItem(atPath: folder)
        }
        try body(store, try #require(store.table(typeName: "Thing")))
    }

    @Test func oneOffTextsStayWithinTwoGenerationsAndAHotTextStays() throws {
        try withTable { store, table in
            let cache = BoundQueries(capacity: 16)
            let hot = "kind=a&sort(+rank)&limit(4)"
            for n in 0..<5_000 {
                _ = try cache.query("kind=a&rank=gt=\(n)&sort(+rank)&limit(4)", table: table, store: store)
                _ = try cache.query(hot, table: table, store: store)
                #expect(cache.count <= 32)
            }
            #expect(cache.holds(hot, table: table))
            #expect(cache.holds("kind=a&rank=gt=4999&sort(+rank)&limit(4)", table: table))
            #expect(!cache.holds("kind=a&rank=gt=0&sort(+rank)&limit(4)", table: table))
        }
    }

    @Test func theBoundQueryAndPlanMatchAFreshParse() throws {
        try withTable { store, table in
            let cache = BoundQueries(capacity: 2)
            let texts = ["rank=gt=3", "kind=b&sort(-rank)", "rank=lt=9&limit(2)"]
            for _ in 0..<3 {
                for text in texts {
                    let kept = try cache.query(text, table: table, store: store)
                    let fresh = try QueryParser.parse(text).bound(to: table.definition, schema: store.schema)
                    #expect(String(describing: kept.query) == String(describing: fresh))
                    let plan = QueryExecutor(store: store).plan(fresh, table: table)
                    #expect(kept.plan.description == plan.description)
                    #expect(kept.plan.whereClause == plan.whereClause && kept.plan.orderBy == plan.orderBy)
                }
            }
        }
    }

    @Test func aBadTextIsRefusedEveryTimeAndNotKept() throws {
        try withTable { store, table in
            let cache = BoundQueries()
            for _ in 0..<2 {
                #expect(throws: QuerySyntaxError.self) { _ = try cache.query("sort(+rank", table: table, store: store) }
            }
            #expect(!cache.holds("sort(+rank", table: table))
            #expect(cache.count == 0)
        }
    }
}

@Suite struct BoundQueryTemplatesTests {
    @Test func aTemplateIsParsedOnceAndGivesWhatTheWrittenQueryGives() throws {
        try BoundQueriesTests().withTable { store, table in
            let cache = BoundQueries(capacity: 16)
            let template = "kind=?&rank=gt=?&sort(+rank)&limit(4)"
            for n in 0..<200 {
                let kept = try cache.query(template, arguments: ["a b".queryValue, n.queryValue], table: table, store: store)
                let fresh = try QueryParser.parse("kind=a%20b&rank=gt=\(n)&sort(+rank)&limit(4)").bound(to: table.definition, schema: store.schema)
                // The filter is compared through the plans (SQL and arguments): its offsets differ, as the texts do.
                #expect(kept.query.sort == fresh.sort && kept.query.limit == fresh.limit)
                #expect(kept.plan.whereClause == QueryExecutor(store: store).plan(fresh, table: table).whereClause)
                #expect(kept.plan.arguments == QueryExecutor(store: store).plan(fresh, table: table).arguments)
                #expect(kept.plan.description == QueryExecutor(store: store).plan(fresh, table: table).description)
            }
            #expect((17...32).contains(cache.count), "the filled queries are kept by their values, within two generations")
            #expect(cache.holds("kind=?&rank=gt=?&sort(+rank)&limit(4)\u{1}u3:a b\u{1}t3:199", table: table))
            let again = try cache.query(template, arguments: ["a b".queryValue, 199.queryValue], table: table, store: store)
            #expect(
                again.plan.arguments
                    == (try cache.query(template, arguments: ["a b".queryValue, 199.queryValue], table: table, store: store)).plan.arguments)
            // The same values of other kinds are other queries.
            let text = try cache.query(template, arguments: ["a b".queryValue, "199".queryValue], table: table, store: store)
            #expect(text.plan.arguments == again.plan.arguments, "text bound to an Int attribute is the same number")
            #expect(cache.holds("kind=?&rank=gt=?&sort(+rank)&limit(4)\u{1}u3:a b\u{1}u3:199", table: table))
        }
    }

    @Test func aTemplateNamingAnUnknownAttributeOrGivenTooFewValuesIsRefused() throws {
        try BoundQueriesTests().withTable { store, table in
            let cache = BoundQueries()
            #expect(throws: QueryError.self) { _ = try cache.query("rank=?", arguments: [], table: table, store: store) }
            #expect(throws: QueryError.self) {
                _ = try cache.query("rank=?", arguments: ["x".queryValue], table: table, store: store)
            }
        }
    }
}
