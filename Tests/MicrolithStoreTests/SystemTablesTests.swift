import Foundation
import GRDB
import MicrolithJSON
import MicrolithStore
import Synchronization
import Testing

/// A library's tables, as it would declare them: a first step and, later, a second.
private let auditV1 = SystemTables(owner: "audit", migrations: ["CREATE TABLE _audit(seq INTEGER PRIMARY KEY, what TEXT NOT NULL)"])
private let auditV2 = SystemTables(owner: "audit", migrations: auditV1.migrations + ["ALTER TABLE _audit ADD COLUMN who TEXT"])

private func open(_ directory: String, _ systemTables: [SystemTables]) throws -> Store {
    try Store.open(
        schema: try parseSchema(todoSchemaText),
        configuration: StoreConfiguration(directory: directory, durability: .normal, systemTables: systemTables))
}

private func columns(_ store: Store, _ table: String) async throws -> [String] {
    try await store.read(database: "data") { db in try Row.fetchAll(db, sql: "PRAGMA table_info(\(table))").map { $0["name"] as String } }
}

private func stepsTaken(_ store: Store, _ owner: String) async throws -> String? {
    try await store.read(database: "data") { db in
        try String.fetchOne(db, sql: "SELECT value FROM _microlith_meta WHERE key = ?", arguments: ["migrations.\(owner)"])
    }
}

@Suite struct SystemTablesTests {
    @Test func declaredTablesAreMadeAtOpenAndOnlyThen() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let bare = try open(directory, [])
        #expect(try await columns(bare, "_audit").isEmpty)
        bare.close()
        let store = try open(directory, [auditV1])
        #expect(try await columns(store, "_audit") == ["seq", "what"])
        #expect(try await stepsTaken(store, "audit") == "1")
        store.close()
    }

    @Test func eachStepRunsOnceAndLaterStepsRunOnTheNextOpen() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let first = try open(directory, [auditV1])
        try await first.write { txn in try txn.db.execute(sql: "INSERT INTO _audit(what) VALUES ('kept')") }
        first.close()
        // The same steps again: nothing runs twice (each step fails when it runs a second time).
        for _ in 0..<2 {
            let store = try open(directory, [auditV2])
            #expect(try await columns(store, "_audit") == ["seq", "what", "who"])
            #expect(try await stepsTaken(store, "audit") == "2")
            #expect(try await store.read(database: "data") { db in try String.fetchAll(db, sql: "SELECT what FROM _audit") } == ["kept"])
            store.close()
        }
    }

    @Test func aDatabaseAheadOfTheDeclarationIsRefused() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        try open(directory, [auditV2]).close()
        #expect {
            try open(directory, [auditV1]).close()
        } throws: { error in
            (error as? StoreError)?.code == .incompatibleSchema && "\(error)".contains("newer version")
        }
    }

    @Test func aFailingStepLeavesTheDatabaseAsItWas() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        try open(directory, []).close()
        let broken = SystemTables(owner: "broken", migrations: ["CREATE TABLE _half(x)", "NOT SQL"])
        #expect(throws: StoreError.self) { try open(directory, [broken]).close() }
        let store = try open(directory, [])
        defer { store.close() }
        #expect(try await columns(store, "_half").isEmpty)
        #expect(try await stepsTaken(store, "broken") == nil)
    }

    @Test func oneOwnerDeclaredTwiceDifferentlyIsRefused() throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        #expect(throws: StoreError.self) { try open(directory, [auditV1, auditV2]).close() }
        try open(directory, [auditV1, auditV1]).close()
    }
}

@Suite struct CommitNotificationTests {
    @Test func listenersHearOfCommittedNotificationsOnlyOncePerCommit() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let heard = Mutex<[String]>([])
        store.listen("a") { database in heard.withLock { $0.append("a:\(database)") } }
        store.listen("b") { database in heard.withLock { $0.append("b:\(database)") } }
        let todo = try store.layout("Todo")
        try await store.write { txn in
            txn.notify("a")
            txn.notify("a")
        }
        #expect(heard.withLock { $0 } == ["a:data"])
        struct Refused: Error {}
        await #expect(throws: Refused.self) {
            try await store.write { txn in
                try txn.put(todo, id: .string("t1"), body: ["title": "rolled back"])
                txn.notify("b")
                throw Refused()
            }
        }
        #expect(heard.withLock { $0 } == ["a:data"])
        try await store.write { txn in txn.notify("c") }
        #expect(heard.withLock { $0 } == ["a:data"])
    }
}
