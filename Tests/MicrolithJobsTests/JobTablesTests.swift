import Foundation
import GRDB
import Logging
import MicrolithStore
import Testing

@testable import MicrolithJobs

/// `sqlite3 data.sqlite .dump` of a data folder made by `microlith serve` before the job tables
/// were declared by this library (the store made them), with two jobs and a schedule added as
/// that version wrote them.
private let previousVersionDump = """
    PRAGMA foreign_keys=OFF;
    BEGIN TRANSACTION;
    CREATE TABLE _microlith_meta(key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
    INSERT INTO _microlith_meta VALUES('node','368e0fbc-e084-48b4-88bb-56fb237ae7ae');
    CREATE TABLE _microlith_tables(
        name TEXT PRIMARY KEY NOT NULL, primary_key TEXT NOT NULL, signature TEXT NOT NULL,
        scalar_indexes TEXT NOT NULL, list_indexes TEXT NOT NULL);
    INSERT INTO _microlith_tables VALUES('Order','id:ID','pk=id:ID;sealed=false;id:ID;total:Int','','');
    CREATE TABLE _microlith_changelog(
        seq INTEGER PRIMARY KEY AUTOINCREMENT, txn INTEGER NOT NULL, tbl TEXT NOT NULL, id NOT NULL,
        op TEXT NOT NULL, version INTEGER NOT NULL, origin TEXT NOT NULL, record TEXT);
    CREATE TABLE _microlith_jobs(
        id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, payload TEXT NOT NULL,
        state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT NULL,
        run_at INTEGER NOT NULL, lease_until INTEGER, owner TEXT, last_error TEXT,
        created INTEGER NOT NULL, updated INTEGER NOT NULL);
    INSERT INTO _microlith_jobs VALUES(1,'test.note','{"key":"from-before","failures":0}','pending',0,3,1764770000000,NULL,NULL,NULL,1764770000000,1764770000000);
    INSERT INTO _microlith_jobs VALUES(2,'test.note','{"key":"dead-before","failures":9}','dead',3,3,1764770000000,NULL,NULL,'planned failure 3 of dead-before',1764770000000,1764770000000);
    CREATE TABLE _microlith_schedules(
        name TEXT PRIMARY KEY NOT NULL, next_run INTEGER NOT NULL, last_run INTEGER, spec TEXT NOT NULL);
    INSERT INTO _microlith_schedules VALUES('test.tick',1764770060000,1764770000000,'every 60 seconds');
    CREATE TABLE IF NOT EXISTS "r_Order"(id PRIMARY KEY NOT NULL, data TEXT NOT NULL, version INTEGER NOT NULL, origin TEXT NOT NULL) WITHOUT ROWID;
    DELETE FROM sqlite_sequence;
    INSERT INTO sqlite_sequence VALUES('_microlith_jobs',2);
    CREATE INDEX _microlith_changelog_version ON _microlith_changelog(version);
    CREATE INDEX _microlith_jobs_due ON _microlith_jobs(state, run_at);
    COMMIT;
    """

/// The definitions SQLite keeps of the job tables and their indexes.
private func jobTableDefinitions(_ store: Store) async throws -> [String] {
    try await store.read(database: "data") { db in
        try Row.fetchAll(
            db,
            sql: """
                SELECT type, name, sql FROM sqlite_master
                WHERE tbl_name IN ('_microlith_jobs', '_microlith_schedules') ORDER BY name
                """
        ).map { "\($0[0] as String) \($0[1] as String): \(($0[2] as String?) ?? "-")" }
    }
}

@Suite struct JobTablesTests {
    @Test func aDataFolderFromBeforeTheDeclarationOpensUnchangedAndItsJobsRun() async throws {
        let f = try JobsFixture { directory in
            let queue = try DatabaseQueue(path: (directory as NSString).appendingPathComponent("data.sqlite"))
            try queue.writeWithoutTransaction { db in try db.execute(sql: previousVersionDump) }
            try queue.close()
        }
        defer { f.close() }
        let fresh = try JobsFixture()
        defer { fresh.close() }
        let definitions = try await jobTableDefinitions(f.store)
        #expect(definitions.count == 4)
        #expect(definitions == (try await jobTableDefinitions(fresh.store)))

        let queue = JobQueue(store: f.store)
        #expect(try await queue.list(database: "data").map(\.state) == [.dead, .pending])
        #expect(try await Scheduler.states(store: f.store).map(\.name) == ["test.tick"])
        let id = try await f.store.write { txn in try txn.enqueue(TestJobs.note, Note(key: "after")) }
        #expect(id == 3)
        let worker = JobWorker(
            store: f.store, modules: f.modules, configuration: JobConfiguration(pollInterval: .milliseconds(50)), logger: Logger(label: "test"))
        try await f.running([worker]) { () async throws in
            #expect(try await f.eventually { f.journal.count("from-before") == 1 && f.journal.count("after") == 1 })
        }
        #expect(try await queue.job(database: "data", id: 1)?.state == .done)
        #expect(try await queue.job(database: "data", id: 2)?.state == .dead)
        #expect(f.journal.count("dead-before") == 0)
    }

    @Test func aCommitThatEnqueuesWakesAWaitingWorkerAtOnce() async throws {
        let f = try JobsFixture()
        defer { f.close() }
        // Without a wake-up the worker would look again only after lease / 3 = 20 s.
        let worker = JobWorker(
            store: f.store, modules: f.modules, configuration: JobConfiguration(pollInterval: .seconds(60), lease: .seconds(60)),
            logger: Logger(label: "test"))
        try await f.running([worker]) { () async throws in
            try await Task.sleep(for: .milliseconds(300))
            _ = try await f.store.write { txn in try txn.enqueue(TestJobs.note, Note(key: "woken")) }
            // Well under the 20 s the worker would otherwise wait, and loose enough for a busy machine.
            #expect(try await f.eventually(15) { f.journal.count("woken") == 1 })
        }
    }

    @Test func aRowInAnUnknownStateIsAnErrorNotAPendingJob() async throws {
        let f = try JobsFixture()
        defer { f.close() }
        try await f.store.write { txn in
            try txn.db.execute(
                sql: """
                    INSERT INTO _microlith_jobs(name, payload, state, attempts, max_attempts, run_at, created, updated)
                    VALUES ('test.note', '{}', 'paused', 0, 1, 0, 0, 0)
                    """)
        }
        await #expect {
            try await JobQueue(store: f.store).job(database: "data", id: 1)
        } throws: { error in
            (error as? StoreError)?.code == .storage && "\(error)".contains("'paused'")
        }
    }
}
