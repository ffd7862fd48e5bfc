import GRDB
import MicrolithJSON
import MicrolithStore
import MicrolithTestSupport
import Testing

@Suite("Store: index columns and list side tables")
struct StoreIndexTests {
    @Test func layoutHasOneColumnPerScalarIndexAndOneSideTablePerListIndex() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")

        #expect(try await store.sqlColumns(todo) == ["id", "data", "version", "origin", "stamps", "i_done", "i_priority"])
        let tables = try await store.sqlTables()
        #expect(tables.isSuperset(of: ["r_Todo", "a_Todo_tags", "r_Counter", "_microlith_changelog", "_microlith_meta", "_microlith_tables"]))
        #expect(!tables.contains("a_Todo_labels"), "unindexed lists get no side table")
    }

    @Test func indexColumnsFollowEveryWrite() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")

        try await store.put(todo, .string("t1"), ["title": "a", "priority": 2, "done": true])
        try await store.put(todo, .string("t2"), ["title": "b", "priority": nil, "done": false])
        try await store.put(todo, .string("t3"), ["title": "c"])
        #expect(try await store.indexColumn(todo, "i_priority") == ["t1": Int64(2).databaseValue, "t2": .null, "t3": .null])
        #expect(
            try await store.indexColumn(todo, "i_done") == ["t1": Int64(1).databaseValue, "t2": Int64(0).databaseValue, "t3": .null])

        _ = try await store.write { txn in try txn.patch(todo, id: .string("t3"), patch: ["priority": 7]) }
        try await store.put(todo, .string("t1"), ["title": "a"])
        #expect(try await store.indexColumn(todo, "i_priority") == ["t1": .null, "t2": .null, "t3": Int64(7).databaseValue])

        try await store.write { txn in _ = try txn.delete(todo, id: .string("t3")) }
        #expect(try await store.indexColumn(todo, "i_priority") == ["t1": .null, "t2": .null])
    }

    @Test func sideTablesHoldEachDistinctNonNullElement() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")

        try await store.put(todo, .string("t1"), ["title": "a", "tags": ["home", "work", "home", nil]])
        try await store.put(todo, .string("t2"), ["title": "b", "tags": []])
        try await store.put(todo, .string("t3"), ["title": "c", "tags": ["work"]])
        #expect(try await store.sideTable(todo, "tags") == ["t1=home", "t1=work", "t3=work"])

        try await store.put(todo, .string("t1"), ["title": "a", "tags": ["urgent"]])
        _ = try await store.write { txn in try txn.patch(todo, id: .string("t3"), patch: ["tags": nil]) }
        #expect(try await store.sideTable(todo, "tags") == ["t1=urgent"])

        try await store.write { txn in _ = try txn.delete(todo, id: .string("t1")) }
        #expect(try await store.sideTable(todo, "tags").isEmpty)
    }

    @Test func sideTablesFollowReorderedRepeatedAndEmptiedLists() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")

        try await store.put(todo, .string("t1"), ["title": "a", "tags": ["home", "work"]])
        try await store.put(todo, .string("t1"), ["title": "b", "tags": ["work", "home", "work"]])
        #expect(try await store.sideTable(todo, "tags") == ["t1=home", "t1=work"], "the same elements in another order")
        try await store.put(todo, .string("t1"), ["title": "c", "tags": ["work", "car"]])
        #expect(try await store.sideTable(todo, "tags") == ["t1=car", "t1=work"])
        try await store.put(todo, .string("t1"), ["title": "d"])
        #expect(try await store.sideTable(todo, "tags").isEmpty)
        try await store.put(todo, .string("t1"), ["title": "e", "tags": ["home"]])
        #expect(try await store.sideTable(todo, "tags") == ["t1=home"])
    }

    @Test func aPutOverAnExpiredRecordReplacesItsSideTableRows() async throws {
        let clock = ManualClock(1_800_000_000_000)
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let store = try Store.open(
            schema: try parseSchema("type Note @table(expiration: 60) { id: ID @primaryKey  tags: [String] @indexed }"),
            configuration: StoreConfiguration(directory: directory, durability: .normal, wallClock: { clock.read() }))
        defer { store.close() }
        let note = try store.layout("Note")

        try await store.put(note, .string("n"), ["tags": ["old", "both"]])
        clock.set(clock.read() + 61_000)
        let (record, previous) = try await store.write { txn in try txn.replace(note, id: .string("n"), body: ["tags": ["both", "new"]]) }
        #expect(previous == nil, "an expired record counts as absent")
        #expect(record.record["tags"] == ["both", "new"])
        #expect(try await store.sideTable(note, "tags") == ["n=both", "n=new"])
    }

    @Test func storedRecordTextIsTheCompactJSON() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")
        let record = try await store.put(todo, .string("t1"), ["title": "é\"", "score": 2.5, "meta": ["k": [1, nil]]])

        let stored = try await store.read(database: "data") { db in
            try Row.fetchOne(db, sql: "SELECT data, version, origin FROM r_Todo WHERE id = 't1'").map {
                ($0[0] as String, $0[1] as Int64, $0[2] as String)
            }
        }
        let (text, version, origin) = try #require(stored)
        #expect(text == String(decoding: JSONWriter.encode(.object(record.record)), as: UTF8.self))
        #expect(version == record.version)
        #expect(origin == store.nodeID)
    }
}
