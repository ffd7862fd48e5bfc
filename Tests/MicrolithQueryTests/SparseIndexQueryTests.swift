import Foundation
import MicrolithJSON
import MicrolithQuery
import MicrolithSchema
import MicrolithStore
import Testing

private let sparseSchema = """
    type Item @table @export @index(attributes: ["cat", "batch"]) {
        id: Int @primaryKey
        cat: String @indexed(sparse: true)
        pos: Int @indexed(sparse: true)
        batch: Int @indexed
    }
    """

/// 900 records. `pos` is missing from every third record and null in every fifth (of the rest);
/// `cat` is `common` for most, `rare` for every 50th, and missing from every seventh.
private func sparseRecords() -> [(id: Int64, body: JSONObject)] {
    (0..<900).map { i in
        var body: JSONObject = ["batch": .int(Int64(i / 30))]
        if i % 3 != 0 { body["pos"] = i % 5 == 0 ? .null : .int(Int64((i * 7) % 1000)) }
        if i % 7 != 0 { body["cat"] = .string(i % 50 == 1 ? "rare" : "common") }
        return (Int64(5_000 - i), body)
    }
}

@Suite("Query planner: sparse indexes (@indexed(sparse: true)) give the answers of whole ones")
struct SparseIndexQueryTests {
    private func withSparseStore(_ body: (Store, TableLayout, ItemModel) async throws -> Void) async throws {
        try await withItemStore(schema: sparseSchema, records: sparseRecords(), body)
    }

    /// Runs `text`, checks its rows and its count against the plan-free answer; returns the plan.
    @discardableResult
    private func run(
        _ text: String, _ store: Store, _ table: TableLayout, _ model: [(id: Int64, record: JSONObject)]
    ) async throws
        -> QueryPlan
    {
        let query = try QueryParser.parse(text).bound(to: table.definition, schema: store.schema)
        let executor = QueryExecutor(store: store)
        let result = try await executor.execute(query, table: table)
        let got = result.rows.map { row -> Int64 in
            if case .int(let i) = row.id { return i }
            return -1
        }
        let expected = planFreeAnswer(query, model)
        #expect(got == expected, "\(text) answered by \(result.plan)")
        if query.limit == nil {
            #expect(try await executor.count(query, table: table) == expected.count, "count of \(text)")
        }
        return result.plan
    }

    @Test func everyKindOfConditionAndSortFindsTheRecordsWithoutAValueToo() async throws {
        try await withSparseStore { store, table, model in
            let texts = [
                "pos=null", "cat=null", "pos!=null", "cat!=null", "pos=null&cat=common", "pos=gt=500", "pos=lt=20", "pos=ge=0",
                "cat=rare", "cat=sw=co", "cat=common&batch=3", "pos=null|cat=rare", "pos=null&sort(+id)&limit(5)",
                "sort(+pos)&limit(7)", "sort(-pos)&limit(7)", "sort(+cat,-pos)&limit(9)", "cat=common&sort(+pos)&limit(5)",
                "cat=common&sort(-pos)&limit(5)", "batch=2&sort(+pos)&limit(6)", "cat=rare&sort(+pos)&limit(3)",
                "cat=common&pos=null&sort(+pos)&limit(3)", "cat=common&pos=gt=100&sort(+pos)&limit(4)",
                "cat=common&pos=lt=900&sort(-pos)&limit(4)", "batch=gt=1&pos!=null&sort(+pos)&limit(5)", "batch=4&sort(+cat)&limit(8)",
                "cat=null&batch=3", "cat=common&batch=5&sort(+pos)&limit(3)", "cat=rare&sort(+batch)&limit(4)",
            ]
            for text in texts { try await run(text, store, table, model) }
        }
    }

    @Test func aTestForNullCannotUseTheIndexAndSaysSo() async throws {
        try await withSparseStore { store, table, model in
            let plan = try await run("pos=null", store, table, model)
            #expect(plan.isFullScan, "\(plan)")
            #expect(!plan.usesIndex)
            // A whole index serves the same test.
            let whole = try await run("batch=null", store, table, model)
            #expect(!whole.isFullScan, "\(whole)")
            // A composite index led by the attribute is whole: it serves the test for null.
            let led = try await run("cat=null", store, table, model)
            #expect(!led.isFullScan && led.usesIndex, "\(led)")
            // A comparison with a value still goes through the sparse index.
            let ranged = try await run("pos=gt=500", store, table, model)
            #expect(ranged.usesIndex && !ranged.isFullScan, "\(ranged)")
        }
    }

    @Test func theSortIndexIsWalkedOnlyWhenTheFilterLeavesOutRecordsWithoutAValue() async throws {
        try await withSparseStore { store, table, model in
            // `cat=common` holds most records, so a whole `pos` index would be walked; the sparse
            // one lacks the records without a position, which sort first: SQLite finds and sorts.
            var plan = try await run("cat=common&sort(+pos)&limit(5)", store, table, model)
            #expect(plan.order == .sqlite, "\(plan)")
            // With `pos` compared with a value, every match is in the index: it is walked.
            plan = try await run("cat=common&pos=gt=100&sort(+pos)&limit(4)", store, table, model)
            #expect(plan.order == .sortIndexWalk(attribute: "pos"), "\(plan)")
            plan = try await run("cat=common&pos=ge=0&sort(-pos)&limit(4)", store, table, model)
            #expect(plan.order == .sortIndexWalk(attribute: "pos"), "\(plan)")
        }
    }

    @Test func writesKeepTheAnswersRightAsValuesComeAndGo() async throws {
        try await withSparseStore { store, table, model in
            var model = model
            // A record gains a position, one loses it, one has it set to null, one is new.
            let changes: [(Int64, JSONObject)] = [
                (5_000, ["batch": .int(0), "pos": .int(1), "cat": .string("common")]),
                (4_999, ["batch": .int(0), "cat": .string("common")]),
                (4_998, ["batch": .int(0), "pos": .null]),
                (9_000, ["batch": .int(1), "cat": .string("rare")]),
            ]
            _ = try await store.write { (txn: WriteTransaction) -> Void in
                for (id, body) in changes { try txn.put(table, id: .int(id), body: body) }
            }
            for (id, body) in changes {
                var record = body
                record["id"] = .int(id)
                model.removeAll { $0.id == id }
                model.append((id, record))
            }
            for text in ["pos=null", "pos=lt=5", "cat=rare&sort(+pos)&limit(4)", "cat=common&sort(+pos)&limit(4)", "cat=null&batch=0"] {
                try await run(text, store, table, model)
            }
        }
    }
}
