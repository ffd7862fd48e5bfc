import Foundation
import GRDB
import MicrolithJSON
import MicrolithStore
import Testing

private let version1 = """
    type Todo @table @export {
        id: ID @primaryKey
        title: String
        notes: String
        labels: [String]
        rank: Int @indexed
    }
    """

/// `notes` and `labels` become indexed; a table is added.
private let version2 = """
    type Todo @table @export {
        id: ID @primaryKey
        title: String
        notes: String @indexed
        labels: [String] @indexed
        rank: Int @indexed
    }
    type Note @table {
        id: ID @primaryKey
        text: String
    }
    """

/// `version1` with one line replaced.
private func variant(replacing line: String, with replacement: String) -> String {
    precondition(version1.contains(line))
    return version1.replacingOccurrences(of: line, with: replacement)
}

/// Opens `directory` with `schema`, writes nothing, and returns the error opening threw.
private func openError(_ directory: String, _ schema: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) -> StoreError? {
    do {
        let store = try openStore(directory, schema: schema)
        store.close()
        Issue.record("the store opened, but an incompatibleSchema error was expected", sourceLocation: sourceLocation)
        return nil
    } catch let error as StoreError {
        return error
    } catch {
        Issue.record("expected a StoreError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// Fills a version-1 store with three records and closes it.
private func seedVersion1(_ directory: String) async throws {
    let store = try openStore(directory, schema: version1)
    defer { store.close() }
    let todo = try store.layout("Todo")
    try await store.put(todo, .string("t1"), ["title": "a", "notes": "first", "labels": ["x", "y"], "rank": 1])
    try await store.put(todo, .string("t2"), ["title": "b", "labels": ["y"]])
    try await store.put(todo, .string("t3"), ["title": "c", "notes": "third", "rank": 3])
}

/// Checks that the version-1 data is intact and writable with the version-1 schema.
private func expectVersion1Intact(_ directory: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) async throws {
    let store = try openStore(directory, schema: version1)
    defer { store.close() }
    let todo = try store.layout("Todo")
    #expect(try await store.get(todo, .string("t1"))?.record["notes"] == "first", sourceLocation: sourceLocation)
    #expect(try await store.get(todo, .string("t3"))?.record["rank"] == 3, sourceLocation: sourceLocation)
    #expect(try await store.changes(after: 0).count == 3, sourceLocation: sourceLocation)
    try await store.put(todo, .string("t4"), ["title": "d"])
}

@Suite("Store: migrations")
struct MigratorTests {
    @Test func addingATableKeepsExistingData() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        try await seedVersion1(directory)

        let store = try openStore(directory, schema: version2)
        defer { store.close() }
        #expect(try await store.sqlTables().contains("r_Note"))
        #expect(try await store.get(try store.layout("Todo"), .string("t1"))?.record["title"] == "a")
        let note = try store.layout("Note")
        try await store.put(note, .string("n1"), ["text": "hello"])
        #expect(try await store.get(note, .string("n1"))?.record["text"] == "hello")
    }

    @Test func indexingAnExistingAttributeBackfillsIt() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        try await seedVersion1(directory)

        let store = try openStore(directory, schema: version2)
        defer { store.close() }
        let todo = try store.layout("Todo")
        #expect(try await store.sqlColumns(todo).contains("i_notes"))
        #expect(
            try await store.indexColumn(todo, "i_notes") == ["t1": "first".databaseValue, "t2": .null, "t3": "third".databaseValue])
        #expect(try await store.sideTable(todo, "labels") == ["t1=x", "t1=y", "t2=y"])
        #expect(
            try await store.indexColumn(todo, "i_rank") == ["t1": Int64(1).databaseValue, "t2": .null, "t3": Int64(3).databaseValue],
            "the existing index is kept")

        try await store.put(todo, .string("t4"), ["notes": "fourth", "labels": ["z"]])
        #expect(try await store.indexColumn(todo, "i_notes")["t4"] == "fourth".databaseValue)
        #expect(try await store.sideTable(todo, "labels").contains("t4=z"))
    }

    @Test func unindexingDropsTheColumnAndKeepsTheData() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        try await seedVersion1(directory)
        do {
            let indexed = try openStore(directory, schema: version2)
            indexed.close()
        }

        let store = try openStore(directory, schema: variant(replacing: "rank: Int @indexed", with: "rank: Int"))
        defer { store.close() }
        let todo = try store.layout("Todo")
        let columns = try await store.sqlColumns(todo)
        #expect(!columns.contains("i_rank"))
        #expect(!columns.contains("i_notes"))
        #expect(try await !store.sqlTables().contains("a_Todo_labels"))
        #expect(try await store.get(todo, .string("t3"))?.record["rank"] == 3)
        try await store.put(todo, .string("t5"), ["rank": 5])
    }

    @Test func aTableLeftOutOfTheSchemaKeepsItsData() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        do {
            let store = try openStore(directory, schema: version2)
            defer { store.close() }
            try await store.put(try store.layout("Note"), .string("n1"), ["text": "kept"])
        }
        do {
            let store = try openStore(directory, schema: version1)
            store.close()
        }
        let store = try openStore(directory, schema: version2)
        defer { store.close() }
        #expect(try await store.get(try store.layout("Note"), .string("n1"))?.record["text"] == "kept")
    }

    @Test func changingThePrimaryKeyTypeIsRefused() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        try await seedVersion1(directory)

        let error = openError(directory, variant(replacing: "id: ID @primaryKey", with: "id: Int @primaryKey"))
        #expect(error?.code == .incompatibleSchema)
        let message = error?.message ?? ""
        #expect(message.contains("table Todo"), "\(message)")
        #expect(message.contains("primary key"), "\(message)")
        #expect(message.contains("id:ID") && message.contains("id:Int"), "\(message)")
        try await expectVersion1Intact(directory)
    }

    @Test func changingThePrimaryKeyAttributeIsRefused() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        try await seedVersion1(directory)

        let error = openError(directory, variant(replacing: "id: ID @primaryKey", with: "key: ID @primaryKey\n    id: String"))
        #expect(error?.code == .incompatibleSchema)
        #expect(error?.message.contains("key:ID") == true, "\(error?.message ?? "")")
        try await expectVersion1Intact(directory)
    }

    @Test func aTypeChangeExistingRecordsDoNotFitIsRefusedNamingTheRecord() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        try await seedVersion1(directory)

        let error = openError(directory, variant(replacing: "notes: String", with: "notes: Int"))
        #expect(error?.code == .incompatibleSchema)
        #expect(error?.attribute == "notes")
        let message = error?.message ?? ""
        #expect(message.contains("Todo") && message.contains("t1") && message.contains("'notes'"), "\(message)")
        try await expectVersion1Intact(directory)
    }

    @Test func aNewRequiredAttributeMissingFromRecordsIsRefused() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        try await seedVersion1(directory)

        let error = openError(directory, variant(replacing: "notes: String", with: "notes: String!"))
        #expect(error?.code == .incompatibleSchema)
        #expect(error?.attribute == "notes")
        #expect(error?.message.contains("t2") == true, "t2 has no notes: \(error?.message ?? "")")
        try await expectVersion1Intact(directory)
    }

    @Test func compatibleChangesOpen() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        try await seedVersion1(directory)

        let widened = variant(replacing: "notes: String", with: "notes: Any\n    extra: Float @indexed")
        let store = try openStore(directory, schema: widened)
        defer { store.close() }
        let todo = try store.layout("Todo")
        #expect(try await store.get(todo, .string("t1"))?.record["notes"] == "first")
        try await store.put(todo, .string("t9"), ["notes": ["any": true], "extra": 1.5])
        #expect(try await store.indexColumn(todo, "i_extra") == ["t1": .null, "t2": .null, "t3": .null, "t9": Double(1.5).databaseValue])
    }

    @Test func compositeIndexesAreCreatedFilledAndDroppedWithTheSchema() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        try await seedVersion1(directory)
        func composites(_ store: Store) async throws -> [String: String] {
            try await store.read(database: "data") { db in
                let rows = try Row.fetchAll(
                    db, sql: "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND name LIKE 'xc!_%' ESCAPE '!' ORDER BY name")
                return Dictionary(uniqueKeysWithValues: rows.map { ($0[0] as String, $0[1] as String) })
            }
        }
        let both = version2.replacingOccurrences(
            of: "type Todo @table @export {", with: #"type Todo @table @export @index(attributes: ["notes", "rank"]) {"#)
        do {
            let store = try openStore(directory, schema: both)
            defer { store.close() }
            let found = try await composites(store)
            #expect(Array(found.keys) == ["xc_Todo__notes__rank"])
            #expect(found["xc_Todo__notes__rank"]?.contains(#"("i_notes", "i_rank")"#) == true)
            // Filled from the existing records, and kept by writes.
            let todo = try store.layout("Todo")
            try await store.put(todo, .string("t4"), ["notes": "first", "rank": 0])
            let ids = try await store.read(database: "data") { db in
                try String.fetchAll(db, sql: "SELECT id FROM r_Todo INDEXED BY xc_Todo__notes__rank WHERE i_notes = 'first' ORDER BY i_rank")
            }
            #expect(ids == ["t4", "t1"])
        }
        // Another order replaces it; the attribute it covered can then stop being indexed.
        let reordered = both.replacingOccurrences(of: #"["notes", "rank"]"#, with: #"["rank", "notes"]"#)
        do {
            let store = try openStore(directory, schema: reordered)
            defer { store.close() }
            #expect(Array(try await composites(store).keys) == ["xc_Todo__rank__notes"])
        }
        do {
            let store = try openStore(directory, schema: version1)
            defer { store.close() }
            #expect(try await composites(store).isEmpty)
            #expect(try await store.get(try store.layout("Todo"), .string("t4"))?.record["notes"] == "first")
        }
    }

    @Test func aSparseIndexLeavesOutRecordsWithoutAValueAndFollowsTheSchemaBothWays() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        try await seedVersion1(directory)
        /// The definition of index `name` and how many entries it holds (`ANALYZE` counts them;
        /// without `analyze`, as the statistics stand).
        func index(_ store: Store, _ name: String = "x_Todo_rank", analyze: Bool = true) async throws -> (sql: String, entries: Int) {
            try await store.write { txn in
                let db = txn.db
                let sql = try String.fetchOne(db, sql: "SELECT sql FROM sqlite_master WHERE name = ?", arguments: [name]) ?? ""
                if analyze { try db.execute(sql: "ANALYZE \"\(name)\"") }
                let stat = try String.fetchOne(db, sql: "SELECT stat FROM sqlite_stat1 WHERE idx = ?", arguments: [name]) ?? ""
                return (sql, Int(stat.split(separator: " ").first ?? "") ?? -1)
            }
        }
        func rankIndex(_ store: Store) async throws -> (sql: String, entries: Int) { try await index(store) }
        do {
            // Statistics exist: a rebuilt index must get its own back.
            let store = try openStore(directory, schema: version1)
            defer { store.close() }
            #expect(try await rankIndex(store).entries == 3)
        }
        let sparse = variant(replacing: "rank: Int @indexed", with: "rank: Int @indexed(sparse: true)")
        do {
            let store = try openStore(directory, schema: sparse)
            defer { store.close() }
            #expect(try await index(store, analyze: false).entries == 2, "the rebuilt index has statistics, counting its 2 entries")
            let found = try await rankIndex(store)
            #expect(found.sql.hasSuffix(#"WHERE "i_rank" IS NOT NULL"#), "\(found.sql)")
            #expect(found.entries == 2, "t2 has no rank: the rebuilt index leaves it out")
            let todo = try store.layout("Todo")
            try await store.put(todo, .string("t4"), ["title": "d"])
            try await store.put(todo, .string("t5"), ["title": "e", "rank": 5])
            #expect(try await rankIndex(store).entries == 3, "a new record without a rank writes no entry")
            let ranked = try await store.read(database: "data") { db in
                try String.fetchAll(db, sql: "SELECT id FROM r_Todo WHERE i_rank > ? ORDER BY i_rank", arguments: [0])
            }
            #expect(ranked == ["t1", "t3", "t5"])
        }
        do {
            // Whole again: every record has its entry, the ones without a rank too.
            let store = try openStore(directory, schema: version1)
            defer { store.close() }
            let found = try await rankIndex(store)
            #expect(!found.sql.contains("WHERE"), "\(found.sql)")
            #expect(found.entries == 5, "t2 and t4 have entries again, under null")
        }
        // An attribute newly indexed as sparse: its column is filled, its index holds the records with a value.
        do {
            let notes = version1.replacingOccurrences(of: "notes: String", with: "notes: String @indexed(sparse: true)")
            let store = try openStore(directory, schema: notes)
            defer { store.close() }
            let found = try await index(store, "x_Todo_notes")
            #expect(found.sql.hasSuffix(#"WHERE "i_notes" IS NOT NULL"#), "\(found.sql)")
            #expect(found.entries == 2, "t1 and t3 have notes; t2, t4 and t5 have none")
        }
        // A new store declares it sparse from the start.
        let fresh = try makeTemporaryDirectory()
        defer { removeDirectory(fresh) }
        let store = try openStore(fresh, schema: sparse)
        defer { store.close() }
        #expect(try await rankIndex(store).sql.hasSuffix(#"WHERE "i_rank" IS NOT NULL"#))
    }
}
