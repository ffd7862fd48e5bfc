import GRDB
import MicrolithJSON
import MicrolithQuery
import MicrolithSchema
import Testing

@testable import MicrolithStore

private let plannerSchema = """
    type Item @table @export {
        id: Int @primaryKey
        n: Int @indexed
        m: Int
        f: Float @indexed
        s: String @indexed
        t: String
        b: Boolean @indexed
        d: Date @indexed
        tags: [String] @indexed
        labels: [String]
        any: Any @indexed
        brandId: ID @indexed
        brand: Brand @relationship(from: brandId)
    }
    type Brand @table {
        id: ID @primaryKey
        name: String @indexed
    }
    """

private struct Planner {
    let schema: Schema
    let table: TableLayout

    init() throws {
        schema = try SchemaParser.parse(plannerSchema, file: "schema.graphql")
        table = TableLayout(definition: try #require(schema.table(typeName: "Item")), index: 0)
    }

    /// The plan of a URL query, bound to the table as the server binds it.
    func plan(_ text: String) throws -> QueryPlan {
        QueryPlanner(table: table).plan(try QueryParser.parse(text).bound(to: table.definition, schema: schema))
    }
}

@Suite("QueryPlanner")
struct QueryPlannerTests {
    private let planner: Planner

    init() throws { planner = try Planner() }

    @Test func noFilterReadsEveryRecordInKeyOrder() throws {
        let plan = try planner.plan("")
        #expect(plan.whereClause == nil)
        #expect(plan.isExact)
        #expect(!plan.usesIndex)
        #expect(!plan.isFullScan, "no conditions is not a full scan of conditions")
        #expect(plan.sortsInSQL)
        #expect(plan.orderBy == "id ASC")
        #expect(plan.description == "table-scan,sql-sort")
    }

    @Test func indexedEqualityUsesTheIndex() throws {
        let plan = try planner.plan("n==5")
        #expect(plan.whereClause == "\"i_n\" = ?")
        #expect(plan.arguments == [Int64(5).databaseValue])
        #expect(plan.usesIndex)
        #expect(!plan.isFullScan)
        #expect(plan.isExact)
        #expect(plan.description == "index,sql-sort")
    }

    @Test func unindexedConditionsAreFullScans() throws {
        for query in ["m==5", "t=sw=a", "labels==x", "brand.name==Acme", "m=gt=1&t==x"] {
            let plan = try planner.plan(query)
            #expect(plan.whereClause == nil, "\(query)")
            #expect(!plan.usesIndex, "\(query)")
            #expect(plan.isFullScan, "\(query)")
            #expect(!plan.isExact, "\(query)")
            #expect(!plan.sortsInSQL, "\(query)")
            #expect(plan.description == "full-scan", "\(query)")
        }
    }

    @Test func mixedConjunctionsNarrowThroughTheIndexAndFilterTheRest() throws {
        let plan = try planner.plan("n==5&m==6")
        #expect(plan.whereClause == "(\"i_n\" = ?)")
        #expect(plan.usesIndex)
        #expect(!plan.isExact)
        #expect(!plan.isFullScan)
        #expect(!plan.sortsInSQL, "a residual filter means sorting in memory")
        #expect(plan.description == "index,residual-filter")
    }

    @Test func disjunctionsNeedEveryBranchIndexed() throws {
        let indexed = try planner.plan("n==1|s==a")
        #expect(indexed.usesIndex)
        #expect(indexed.isExact)
        #expect(indexed.whereClause == "(\"i_n\" = ?) OR (\"i_s\" = ?)")
        #expect(indexed.arguments == [Int64(1).databaseValue, "a".databaseValue])

        let partly = try planner.plan("n==1|m==2")
        #expect(partly.whereClause == nil)
        #expect(partly.isFullScan)
        #expect(!partly.isExact)
    }

    @Test func orderedComparisonsCarryATypeGuard() throws {
        let number = try planner.plan("n=gt=1")
        #expect(number.whereClause == "\"i_n\" > ? AND typeof(\"i_n\") IN ('integer','real')")
        let float = try planner.plan("f=le=2.5")
        #expect(float.whereClause == "\"i_f\" <= ? AND typeof(\"i_f\") IN ('integer','real')")
        #expect(float.arguments == [Double(2.5).databaseValue])
        let string = try planner.plan("s=lt=m")
        #expect(string.whereClause == "\"i_s\" < ? AND typeof(\"i_s\") = 'text'")
        let boolean = try planner.plan("b=ge=true")
        #expect(boolean.whereClause == "\"i_b\" >= ? AND typeof(\"i_b\") IN ('integer','real')")
        #expect(boolean.arguments == [Int64(1).databaseValue])
        let date = try planner.plan("d=gt=2024-05-01")
        #expect(date.whereClause == "\"i_d\" > ? AND typeof(\"i_d\") = 'text'")
        #expect(date.arguments == ["2024-05-01T00:00:00.000Z".databaseValue])
        for plan in [number, float, string, boolean, date] {
            #expect(plan.usesIndex && plan.isExact)
        }
    }

    @Test func valuesOfAnotherKindThanTheAttributeAreNotPushedDown() throws {
        for query in ["s==number:1", "n==string:1", "b==number:1", "f==boolean:true", "n=sw=1", "id==string:1", "any==x"] {
            let plan = try planner.plan(query)
            #expect(plan.whereClause == nil, "\(query): \(plan.whereClause ?? "")")
            #expect(plan.isFullScan, "\(query)")
        }
        // ID attributes hold strings or numbers: both are pushed down.
        #expect(try planner.plan("brandId==number:7").whereClause == "\"i_brandId\" = ?")
        #expect(try planner.plan("brandId==b7").whereClause == "\"i_brandId\" = ?")
    }

    @Test func notEqualIsExactButCannotUseTheIndex() throws {
        let plan = try planner.plan("n!=5")
        #expect(plan.whereClause == "\"i_n\" IS NOT ?")
        #expect(plan.isExact)
        #expect(!plan.usesIndex)
        #expect(plan.isFullScan)
    }

    @Test func nullComparisons() throws {
        let isNull = try planner.plan("n==null")
        #expect(isNull.whereClause == "\"i_n\" IS NULL")
        #expect(isNull.usesIndex && isNull.isExact)
        let notNull = try planner.plan("n!=null")
        #expect(notNull.whereClause == "\"i_n\" IS NOT NULL")
        #expect(notNull.isExact && !notNull.usesIndex)
        let ordered = try planner.plan("n=gt=null")
        #expect(ordered.whereClause == "0", "nothing is greater than null")
        #expect(ordered.isExact)
        let list = try planner.plan("tags==null")
        #expect(list.whereClause == nil, "missing lists and lists holding null are checked in memory")
    }

    @Test func listAttributesUseTheirSideTable() throws {
        let plan = try planner.plan("tags==a")
        #expect(plan.whereClause == "id IN (SELECT id FROM \"a_Item_tags\" WHERE value = ?)")
        #expect(plan.usesIndex && plan.isExact)
        let range = try planner.plan("tags=gt=m")
        #expect(range.whereClause == "id IN (SELECT id FROM \"a_Item_tags\" WHERE value > ? AND typeof(value) = 'text')")
        let negated = try planner.plan("tags!=a")
        #expect(negated.whereClause == "id NOT IN (SELECT id FROM \"a_Item_tags\" WHERE value = ?)")
        #expect(negated.isExact && !negated.usesIndex)
    }

    @Test func thePrimaryKeyIsAnIndex() throws {
        let plan = try planner.plan("id=ge=10")
        #expect(plan.whereClause == "id >= ? AND typeof(id) IN ('integer','real')")
        #expect(plan.usesIndex)
    }

    @Test func startsWithAndContains() throws {
        let prefix = try planner.plan("s=sw=ab")
        // A range with both ends: from the prefix up to the prefix with its last character raised.
        #expect(prefix.whereClause == "\"i_s\" >= ? AND \"i_s\" < ? AND substr(\"i_s\", 1, ?) = ? AND typeof(\"i_s\") = 'text'")
        #expect(prefix.arguments == ["ab".databaseValue, "ac".databaseValue, Int64(2).databaseValue, "ab".databaseValue])
        #expect(prefix.usesIndex && prefix.isExact)
        let unicode = try planner.plan("s=sw=%C3%A9t%C3%A9")
        #expect(unicode.arguments[1] == "étê".databaseValue)
        #expect(unicode.arguments[2] == Int64(3).databaseValue, "substr counts characters, not bytes")
        #expect(QueryPlanner.successor("a/") == "a0")
        #expect(QueryPlanner.successor("a\u{D7FF}") == "a\u{E000}", "surrogates are not scalars: skipped")
        #expect(QueryPlanner.successor("a\u{10FFFF}") == "b", "a last scalar that cannot rise is dropped")
        #expect(QueryPlanner.successor("\u{10FFFF}") == nil, "no upper end")

        let contains = try planner.plan("s=ct=b")
        #expect(contains.whereClause == "instr(\"i_s\", ?) > 0 AND typeof(\"i_s\") = 'text'")
        #expect(contains.isExact)
        #expect(!contains.usesIndex, "a substring search reads every index entry")
        #expect(contains.isFullScan)
    }

    @Test func unboundQueriesAreNotPushedDown() throws {
        let plan = QueryPlanner(table: planner.table).plan(try QueryParser.parse("n==5"))
        #expect(plan.whereClause == nil)
        #expect(plan.isFullScan)
    }

    @Test func sortsOnIndexedScalarsRunInSQL() throws {
        #expect(try planner.plan("sort(n)").orderBy == "\"i_n\" ASC, id ASC")
        #expect(try planner.plan("sort(-n,+s)").orderBy == "\"i_n\" DESC, \"i_s\" ASC, id ASC")
        #expect(try planner.plan("sort(-id)").orderBy == "id DESC")
        #expect(try planner.plan("n=gt=1&sort(-b,id)").orderBy == "\"i_b\" DESC, id ASC")
        let sorted = try planner.plan("s==a&sort(-f)&limit(2)")
        #expect(sorted.sortsInSQL)
        #expect(sorted.description == "index,sql-sort")
    }

    @Test func otherSortsRunInMemory() throws {
        for query in ["sort(m)", "sort(tags)", "sort(n,t)", "sort(any)", "sort(brand.name)", "m==1&sort(n)"] {
            let plan = try planner.plan(query)
            #expect(!plan.sortsInSQL, "\(query)")
            #expect(plan.orderBy == nil, "\(query)")
        }
    }
}
