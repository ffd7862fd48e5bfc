import Foundation
import GRDB
import MicrolithJSON
import MicrolithQuery
import MicrolithSchema
import MicrolithStore
import Testing

private let skewedSchema = """
    type Item @table @export {
        id: Int @primaryKey
        cat: String @indexed
        pos: Int @indexed
        batch: Int @indexed
        note: String
    }
    """

/// 4,000 records whose `cat` is skewed and tied to `pos`:
/// - `common`: 3,390 records spread over the first positions;
/// - `rare`: 10 records, one every 300 positions among them;
/// - `late`: 600 records holding the last 600 positions (the attribute goes with the order);
/// - `batch`: 20 records per value, in position order.
private func skewedRecords() -> [(id: Int64, body: JSONObject)] {
    (0..<4000).map { i in
        let cat: String
        if i >= 3400 {
            cat = "late"
        } else if i % 340 == 170 {
            cat = "rare"
        } else {
            cat = "common"
        }
        // Ids run against positions so that key order and position order differ.
        let body: JSONObject = [
            "cat": .string(cat), "pos": .int(Int64(i)), "batch": .int(Int64(i / 20)), "note": .string("n\(i % 7)"),
        ]
        return (Int64(10_000 - i), body)
    }
}

@Suite("Query planner: filter + sort + limit chooses by estimated cost")
struct QueryPlannerChoiceTests {
    /// Runs `body` with a store holding ``skewedRecords()`` and the records as the model sees them.
    private func withSkewedStore(
        schema text: String = skewedSchema, _ body: (Store, TableLayout, ItemModel) async throws -> Void
    )
        async throws
    {
        try await withItemStore(schema: text, records: skewedRecords(), body)
    }

    private func planFree(_ query: Query, _ model: ItemModel) -> [Int64] { planFreeAnswer(query, model) }

    /// Runs `text` and checks its answer against the plan-free one; returns the plan chosen.
    private func run(
        _ text: String, _ store: Store, _ table: TableLayout, _ model: [(id: Int64, record: JSONObject)]
    ) async throws
        -> QueryPlan
    {
        let query = try QueryParser.parse(text).bound(to: table.definition, schema: store.schema)
        let result = try await QueryExecutor(store: store).execute(query, table: table)
        let got = result.rows.map { row -> Int64 in
            if case .int(let i) = row.id { return i }
            return -1
        }
        #expect(got == planFree(query, model), "\(text) answered by \(result.plan)")
        for row in result.rows {
            #expect(row.json != nil || query.select != nil, "\(text): rows of whole records keep their stored text")
        }
        return result.plan
    }

    @Test func countsAgreeWithTheModelWhetherSQLiteCountsOrRecordsAreTested() async throws {
        try await withSkewedStore { store, table, model in
            var model = model
            let texts = [
                "cat=common", "cat=rare", "cat=nothing", "cat=late&note=n3", "pos=gt=100&pos=lt=200", "note=n1", "",
                "cat=rare&sort(+pos)&limit(2)", "cat=rare|cat=late", "batch=3&select(id)",
            ]
            for round in 0..<2 {
                for text in texts {
                    let query = try QueryParser.parse(text).bound(to: table.definition, schema: store.schema)
                    let expected = planFree(Query(filter: query.filter), model).count
                    #expect(try await QueryExecutor(store: store).count(query, table: table) == expected, "\(text), round \(round)")
                }
                // A write between the rounds: counts follow it.
                let body: JSONObject = ["cat": .string("rare"), "pos": .int(150), "batch": .int(3), "note": .string("n3")]
                _ = try await store.write { txn in try txn.put(table, id: .int(30_000), body: body) }
                var record = body
                record["id"] = .int(30_000)
                model.append((30_000, record))
            }
            // The figures themselves, so the model cannot be wrong the same way.
            let rare = try QueryParser.parse("cat=rare").bound(to: table.definition, schema: store.schema)
            #expect(try await QueryExecutor(store: store).count(rare, table: table) == 11)
        }
    }

    @Test func aKeptStatementAnswersItsShapeWithEveryValueAndEveryWrite() async throws {
        try await withSkewedStore { store, table, model in
            var model = model
            // One shape per plan (walk, find-then-sort, plain), run with other values, again
            // after a write, and early-stopped walks in between: each answer still the model's.
            for round in 0..<3 {
                for n in [10, 500, 2000, 3500] {
                    _ = try await run("cat=common&pos=gt=\(n)&sort(+pos)&limit(4)", store, table, model)
                    _ = try await run("cat=rare&pos=gt=\(n)&sort(+pos)&limit(20)", store, table, model)
                    _ = try await run("batch=\(n / 20)&note=n\(n % 7)", store, table, model)
                }
                let id = Int64(20_000 + round)
                let body: JSONObject = ["cat": .string("rare"), "pos": .int(2500 + Int64(round)), "batch": .int(125), "note": .string("n1")]
                _ = try await store.write { txn in try txn.put(table, id: .int(id), body: body) }
                var record = body
                record["id"] = .int(id)
                model.append((id, record))
            }
        }
    }

    /// With `records: true` a row the record cache holds at the version read takes the cache's
    /// record: on every plan, before and after writes (the cache then holds newer versions than
    /// an older text would carry), each row's record is its own text parsed, and the cache's
    /// counters do not move.
    @Test func rowsTakeTheCachedRecordOnlyAtTheVersionRead() async throws {
        try await withSkewedStore { store, table, model in
            var model = model
            let texts = [
                "cat=common&pos=gt=100&sort(+pos)&limit(4)", "cat=rare&sort(+pos)&limit(20)", "batch=3&note=n1", "cat=late&sort(-pos)",
                "cat=rare&select(id,pos)&sort(+pos)&limit(3)",
            ]
            for round in 0..<2 {
                let before = store.cache.statistics
                for text in texts {
                    let query = try QueryParser.parse(text).bound(to: table.definition, schema: store.schema)
                    let plain = try await QueryExecutor(store: store).execute(query, table: table)
                    let cached = try await QueryExecutor(store: store).execute(query, table: table, records: true)
                    #expect(cached.rows.map(\.id) == plain.rows.map(\.id), "\(text)")
                    #expect(cached.rows.map(\.id) == planFree(query, model).map { RecordID.int($0) }, "\(text)")
                    for (row, other) in zip(cached.rows, plain.rows) {
                        #expect(row.record == other.record, "\(text): \(row.id)")
                        if query.select == nil, let json = row.json {
                            #expect(try JSONParser.parse(json).objectValue == row.record, "\(text): \(row.id) is its own text")
                        }
                    }
                }
                let after = store.cache.statistics
                #expect(after.hits == before.hits && after.misses == before.misses, "queries leave the counters alone")
                // New versions of some matches: the cache moves on with the commit.
                let changed: [Int64] = [10_000 - 170, 10_000 - 3999, 10_000 - 60, 10_000 - 61]
                _ = try await store.write { txn in
                    for id in changed {
                        let current = try #require(try txn.get(table, .int(id)))
                        var body = current.record
                        body["note"] = .string("changed-\(round)")
                        try txn.put(table, id: .int(id), body: body)
                    }
                }
                for id in changed {
                    if let i = model.firstIndex(where: { $0.id == id }) { model[i].record["note"] = .string("changed-\(round)") }
                }
            }
        }
    }

    /// What decides is the version: an entry planted at another version is passed over, one at
    /// the version read is taken (so the path is really used).
    @Test func onlyTheVersionReadIsTakenFromTheCache() async throws {
        try await withSkewedStore { store, table, _ in
            let query = try QueryParser.parse("cat=rare&sort(+pos)&limit(2)").bound(to: table.definition, schema: store.schema)
            let first = try #require(try await QueryExecutor(store: store).execute(query, table: table).rows.first)
            let stored = try #require(try await store.get(table, first.id))
            func plant(version: Int64) {
                var record = stored.record
                record["note"] = "planted"
                let entry = CachedRecord(id: first.id, record: record, json: stored.json, version: version)
                store.cache.apply([(table: table.index, id: first.id, entry: .present(entry))])
            }
            plant(version: stored.version - 1)
            var row = try #require(try await QueryExecutor(store: store).execute(query, table: table, records: true).rows.first)
            #expect(row.record["note"] == stored.record["note"], "another version is not taken")
            plant(version: stored.version)
            row = try #require(try await QueryExecutor(store: store).execute(query, table: table, records: true).rows.first)
            #expect(row.record["note"] == "planted", "the version read is taken from the cache")
            row = try #require(try await QueryExecutor(store: store).execute(query, table: table).rows.first)
            #expect(row.record["note"] == stored.record["note"], "without records: true the text is parsed")
        }
    }

    @Test func aConditionHoldingMostRecordsWalksTheSortIndex() async throws {
        try await withSkewedStore { store, table, model in
            for text in [
                "cat=common&sort(+pos)&limit(5)", "cat=common&pos=gt=1000&sort(+pos)&limit(4)", "cat=common&sort(-pos)&limit(3)",
                "cat=common&pos=lt=3000&sort(-pos)&limit(3)", "cat=common&sort(+pos)&limit(100,110)", "cat=common&sort(+id)&limit(5)",
                "cat=common&pos=gt=50000&sort(+pos)&limit(4)", "cat=common&sort(+pos)&select(id,pos)&limit(5)",
                "cat=common&batch=gt=3&sort(+pos)&limit(5)",
            ] {
                let plan = try await run(text, store, table, model)
                let attribute = text.contains("sort(+id)") ? "id" : "pos"
                #expect(plan.order == .sortIndexWalk(attribute: attribute), "\(text): \(plan)")
                #expect(plan.description == "index,walk(\(attribute))", "\(text)")
            }
        }
    }

    @Test func aRareConditionFindsItsMatchesThenSorts() async throws {
        try await withSkewedStore { store, table, model in
            // 10 matches, 20 wanted: no walk can beat reading the 10.
            var plan = try await run("cat=rare&sort(+pos)&limit(20)", store, table, model)
            #expect(plan.order == .filterThenSort(condition: "cat", abandonedWalk: false))
            #expect(plan.description == "index(cat),sql-sort")
            plan = try await run("cat=rare&pos=gt=10&sort(-pos)&limit(2,12)", store, table, model)
            #expect(plan.order == .filterThenSort(condition: "cat", abandonedWalk: false))
            // 10 matches, 3 wanted: the walk may read 10 records, and the first match is 170 in.
            plan = try await run("cat=rare&sort(+pos)&limit(3)", store, table, model)
            #expect(plan.order == .filterThenSort(condition: "cat", abandonedWalk: true))
            #expect(plan.description == "index(cat),sql-sort,walk-abandoned")
            // No match at all: counted at once, nothing to walk.
            plan = try await run("cat=none&sort(+pos)&limit(3)", store, table, model)
            #expect(plan.order == .filterThenSort(condition: "cat", abandonedWalk: false))
        }
    }

    @Test func theMostSelectiveConditionIsTheOneUsed() async throws {
        try await withSkewedStore { store, table, model in
            // Batch 169 holds 20 records (positions 3380…3399), far along the order: the walk gives
            // up after 20 records and the batch's index, not the category's, finds them.
            var plan = try await run("cat=common&batch=169&sort(+pos)&limit(5)", store, table, model)
            #expect(plan.order == .filterThenSort(condition: "batch", abandonedWalk: true))
            plan = try await run("batch=169&cat=common&sort(+pos)&limit(5)", store, table, model)
            #expect(plan.order == .filterThenSort(condition: "batch", abandonedWalk: true))
            // Batch 1 (positions 20…39) begins just past the walk's budget of 20 records.
            plan = try await run("cat=common&batch=1&sort(+pos)&limit(5)", store, table, model)
            #expect(plan.order == .filterThenSort(condition: "batch", abandonedWalk: true))
            // Batch 0 begins the order: the walk answers after 5 records.
            plan = try await run("cat=common&batch=0&sort(+pos)&limit(5)", store, table, model)
            #expect(plan.order == .sortIndexWalk(attribute: "pos"))
        }
    }

    @Test func aWalkThatFindsNothingEarlyGivesUp() async throws {
        try await withSkewedStore { store, table, model in
            // `late` records sit at the end of the order: walking from the start finds none for
            // 3,400 records, past the walk's budget, so the category's own index answers.
            let plan = try await run("cat=late&sort(+pos)&limit(3)", store, table, model)
            #expect(plan.order == .filterThenSort(condition: "cat", abandonedWalk: true))
            // Walking from the other end finds them at once.
            let reversed = try await run("cat=late&sort(-pos)&limit(3)", store, table, model)
            #expect(reversed.order == .sortIndexWalk(attribute: "pos"))
        }
    }

    @Test func queriesWithoutAChoiceKeepSQLitesPlan() async throws {
        try await withSkewedStore { store, table, model in
            for text in [
                "cat=common&sort(+pos)", "pos=gt=100&sort(+pos)&limit(5)", "cat=common&sort(+note)&limit(5)", "note=n1&sort(+pos)&limit(5)",
                "sort(+pos)&limit(5)", "id=gt=9000&sort(+id)&limit(5)", "cat=common&note=n3&sort(+pos)&limit(5)",
                "cat=common&sort(+pos,-note)&limit(6)",
            ] {
                let query = try QueryParser.parse(text).bound(to: table.definition, schema: store.schema)
                let plan = try await run(text, store, table, model)
                #expect(plan.order == .sqlite, "\(text): \(plan)")
                #expect(plan.description == QueryExecutor(store: store).plan(query, table: table).description, "\(text)")
            }
        }
    }

    @Test func statisticsDoNotChangeTheAnswers() async throws {
        try await withSkewedStore { store, table, model in
            _ = try await store.refreshStatisticsIfStale()
            let stats = try await store.read(database: "data") { db in
                try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'r_Item'")
            }
            #expect((stats ?? 0) > 0)
            for text in ["cat=common&sort(+pos)&limit(5)", "cat=late&sort(+pos)&limit(3)", "cat=rare&sort(+pos)&limit(3)"] {
                _ = try await run(text, store, table, model)
            }
            let plan = try await run("cat=late&sort(+pos)&limit(3)", store, table, model)
            #expect(plan.order == .filterThenSort(condition: "cat", abandonedWalk: true), "the walk's budget stays below 3,400 records")
        }
    }

    /// The skewed records with composite indexes over (cat, pos) and (batch, cat, pos).
    private static let compositeSchema = skewedSchema.replacingOccurrences(
        of: "type Item @table @export {",
        with: #"type Item @table @export @index(attributes: ["cat", "pos"]) @index(attributes: ["batch", "cat", "pos"]) {"#)

    @Test func aCompositeIndexAnswersEqualityPlusSortInOrderWhateverTheSkew() async throws {
        try await withSkewedStore(schema: Self.compositeSchema) { store, table, model in
            // Every shape the plain indexes answer by walking, by sorting, or by giving up a walk.
            for text in [
                "cat=common&sort(+pos)&limit(5)", "cat=common&pos=gt=1000&sort(+pos)&limit(4)", "cat=common&sort(-pos)&limit(3)",
                "cat=common&pos=lt=3000&sort(-pos)&limit(3)", "cat=common&sort(+pos)&limit(100,110)", "cat=rare&sort(+pos)&limit(20)",
                "cat=rare&pos=gt=10&sort(-pos)&limit(2,12)", "cat=rare&sort(+pos)&limit(3)", "cat=none&sort(+pos)&limit(3)",
                "cat=late&sort(+pos)&limit(3)", "cat=late&sort(-pos)&limit(3)", "cat=common&sort(+pos)&select(id,pos)&limit(5)",
                "cat=common&batch=gt=3&sort(+pos)&limit(5)", "cat=common&sort(+pos,-batch)&limit(6)",
                "cat=common&pos=gt=3395&sort(+pos)&limit(4)", "cat=common&sort(+pos)&limit(3380,3400)",
            ] {
                let plan = try await run(text, store, table, model)
                #expect(plan.order == .compositeIndex(attributes: ["cat", "pos"]), "\(text): \(plan)")
                #expect(plan.description == "index(cat+pos),in-order", "\(text)")
            }
            // The index with more equal leading attributes wins.
            for text in [
                "batch=169&cat=common&sort(+pos)&limit(5)", "cat=common&batch=1&sort(-pos)&limit(5)", "batch=170&cat=late&sort(+pos)&limit(2)",
            ] {
                let plan = try await run(text, store, table, model)
                #expect(plan.order == .compositeIndex(attributes: ["batch", "cat", "pos"]), "\(text): \(plan)")
            }
            // Not a leading-equality + next-attribute shape: the single-attribute ways as before
            // (and a residual filter or an unindexed sort keep SQLite's plan).
            for text in [
                "batch=1&sort(+pos)&limit(5)", "cat=common&sort(+batch)&limit(5)", "cat=ne=rare&batch=0&sort(+pos)&limit(5)",
                "cat=common&note=n3&sort(+pos)&limit(5)", "cat=common&sort(+pos,-note)&limit(6)", "cat=common&sort(+pos)",
            ] {
                let plan = try await run(text, store, table, model)
                if case .compositeIndex = plan.order { Issue.record("\(text): \(plan)") }
            }
        }
    }

    @Test func aCompositeIndexStaysRightAcrossWrites() async throws {
        try await withSkewedStore(schema: Self.compositeSchema) { store, table, model in
            var model = model
            // Move records between categories and positions, delete some, add some.
            try await store.write { (txn: WriteTransaction) -> Void in
                for id in stride(from: 10_000, to: 9_000, by: -7) {
                    try txn.put(table, id: .int(Int64(id)), body: ["cat": .string("rare"), "pos": .int(Int64(5_000 + id % 97)), "batch": .int(3)])
                }
                for id in stride(from: 8_000, to: 7_000, by: -11) { _ = try txn.delete(table, id: .int(Int64(id))) }
                try txn.put(table, id: .int(1), body: ["cat": .string("rare"), "pos": .int(-1), "batch": .int(3)])
            }
            model = model.filter { !((7_001...8_000).contains($0.id) && (8_000 - $0.id) % 11 == 0) }
            for id in stride(from: 10_000, to: 9_000, by: -7) {
                model.removeAll { $0.id == Int64(id) }
                model.append((Int64(id), ["id": .int(Int64(id)), "cat": .string("rare"), "pos": .int(Int64(5_000 + id % 97)), "batch": .int(3)]))
            }
            model.append((1, ["id": .int(1), "cat": .string("rare"), "pos": .int(-1), "batch": .int(3)]))
            for text in [
                "cat=rare&sort(+pos)&limit(30)", "cat=rare&sort(-pos)&limit(5,25)", "cat=common&sort(+pos)&limit(990,1010)",
                "batch=3&cat=rare&sort(+pos)&limit(10)",
            ] {
                let plan = try await run(text, store, table, model)
                guard case .compositeIndex = plan.order else {
                    Issue.record("\(text): \(plan)")
                    continue
                }
            }
        }
    }
}
