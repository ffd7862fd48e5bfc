import Foundation
import GRDB
public import MicrolithJSON
import MicrolithSchema
public import MicrolithStore

/// A job as the queue holds it.
public struct JobRecord: Sendable, Equatable {
    /// The states a job moves through: `pending` → `running` → `done`, or back to `pending`
    /// (a retry after a failure, or a run cut short by a shutdown), or to `dead` once its
    /// attempts are used up; a dead or done job is made `pending` again by hand
    /// (``JobQueue/retry(database:id:)``). The raw value is the text of the queue's `state` column.
    public enum State: String, Sendable, CaseIterable {
        /// Waiting for its run time (`run_at`) and a worker.
        case pending
        /// Held by a worker (`owner`) until its lease (`lease_until`) expires.
        case running
        /// Its last run succeeded; deleted after ``JobConfiguration/retention``.
        case done
        /// It failed on each of its attempts; kept until retried by hand.
        case dead
    }

    public var id: Int64
    /// The database whose queue holds the job.
    public var database: String
    /// `module.name`.
    public var name: String
    /// The job's input, as JSON text.
    public var payload: String
    public var state: State
    /// Runs started so far.
    public var attempts: Int
    public var maximumAttempts: Int
    /// When the job may next run (milliseconds since 1970).
    public var runAt: Int64
    /// Until when the worker running it holds it.
    public var leaseUntil: Int64?
    /// The worker that ran it last.
    public var owner: String?
    /// The last failure's message.
    public var lastError: String?
    public var created: Int64
    public var updated: Int64

    /// The job as JSON (`/_jobs`).
    public var json: JSONValue {
        var o = JSONObject()
        o["id"] = .int(id)
        o["database"] = .string(database)
        o["name"] = .string(name)
        o["state"] = .string(state.rawValue)
        o["attempts"] = .int(Int64(attempts))
        o["maxAttempts"] = .int(Int64(maximumAttempts))
        o["runAt"] = .string(JobQueue.iso(runAt))
        o["leaseUntil"] = leaseUntil.map { .string(JobQueue.iso($0)) } ?? .null
        o["owner"] = owner.map { .string($0) } ?? .null
        o["lastError"] = lastError.map { .string($0) } ?? .null
        o["created"] = .string(JobQueue.iso(created))
        o["updated"] = .string(JobQueue.iso(updated))
        o["input"] = (try? JSONParser.parse(payload)) ?? .string(payload)
        return .object(o)
    }
}

/// The durable job queue: one table per database (`_microlith_jobs`), written through the
/// store's transactions so a job is enqueued exactly when the transaction that enqueues it
/// commits (see `WriteTransaction.enqueue`).
public struct JobQueue: Sendable {
    public let store: Store

    public init(store: Store) {
        self.store = store
    }

    /// The channel a transaction that enqueues a job notifies (`WriteTransaction.notify`):
    /// workers listen to it to wake up at once.
    static let enqueuedChannel = "microlith.jobs.enqueued"

    typealias State = JobRecord.State

    static let columns = "id, name, payload, state, attempts, max_attempts, run_at, lease_until, owner, last_error, created, updated"

    /// The job a row of the queue holds.
    /// - Throws: ``StoreError/Code/storage`` when its state is none of ``JobRecord/State``.
    static func record(_ row: Row, database: String) throws -> JobRecord {
        let text: String = row[3]
        guard let state = State(rawValue: text) else {
            throw StoreError(.storage, "job \(row[0] as Int64) of database \(database) has an unknown state '\(text)'")
        }
        return JobRecord(
            id: row[0], database: database, name: row[1], payload: row[2], state: state, attempts: row[4], maximumAttempts: row[5],
            runAt: row[6], leaseUntil: row[7], owner: row[8], lastError: row[9], created: row[10], updated: row[11])
    }

    static func iso(_ ms: Int64) -> String { DateValue.format(ms) }

    /// Takes up to `limit` jobs of `database` that are due (pending and past their run time,
    /// or running under an expired lease: their worker died) and whose name is in `names`;
    /// marks them running for `owner` until `leaseUntil`, counting an attempt.
    public func claim(database: String, names: Set<String>, limit: Int, owner: String, leaseMilliseconds: Int64) async throws -> [JobRecord] {
        guard limit > 0, !names.isEmpty else { return [] }
        let names = names.sorted()
        return try await store.write(database: database) { txn in
            let now = txn.wallClock()
            let marks = Array(repeating: "?", count: names.count).joined(separator: ",")
            var arguments: StatementArguments = [State.pending.rawValue, now, State.running.rawValue, now]
            arguments += StatementArguments(names)
            arguments += [limit]
            let rows = try Row.fetchAll(
                txn.db,
                sql: """
                    SELECT \(Self.columns) FROM _microlith_jobs
                    WHERE ((state = ? AND run_at <= ?) OR (state = ? AND lease_until < ?)) AND name IN (\(marks))
                    ORDER BY run_at, id LIMIT ?
                    """, arguments: arguments)
            var claimed: [JobRecord] = []
            for row in rows {
                var job = try Self.record(row, database: database)
                job.state = .running
                job.attempts += 1
                job.leaseUntil = now + leaseMilliseconds
                job.owner = owner
                job.updated = now
                try txn.db.execute(
                    sql: "UPDATE _microlith_jobs SET state = ?, attempts = ?, lease_until = ?, owner = ?, updated = ? WHERE id = ?",
                    arguments: [job.state.rawValue, job.attempts, job.leaseUntil, owner, now, job.id])
                claimed.append(job)
            }
            return claimed
        }
    }

    /// Extends the leases of running jobs held by `owner`.
    public func extendLeases(database: String, ids: [Int64], owner: String, leaseMilliseconds: Int64) async throws {
        guard !ids.isEmpty else { return }
        try await store.write(database: database) { txn in
            let until = txn.wallClock() + leaseMilliseconds
            for id in ids {
                try txn.db.execute(
                    sql: "UPDATE _microlith_jobs SET lease_until = ? WHERE id = ? AND state = ? AND owner = ?",
                    arguments: [until, id, State.running.rawValue, owner])
            }
        }
    }

    /// Records that the run of `job` succeeded.
    public func complete(_ job: JobRecord) async throws {
        try await finish(
            job, becoming: .done,
            sql: "UPDATE _microlith_jobs SET state = ?, lease_until = NULL, last_error = NULL, updated = ? WHERE id = ? AND owner = ?")
    }

    /// Records that the run of `job` failed with `message`: it runs again after `retryAfter`
    /// milliseconds, or is dead when its attempts are used up. Returns the new state.
    @discardableResult
    public func fail(_ job: JobRecord, message: String, retryAfter: Int64) async throws -> JobRecord.State {
        let state: State = job.attempts >= job.maximumAttempts ? .dead : .pending
        try await store.write(database: job.database) { txn in
            let now = txn.wallClock()
            try txn.db.execute(
                sql: """
                    UPDATE _microlith_jobs SET state = ?, run_at = ?, lease_until = NULL, last_error = ?, updated = ?
                    WHERE id = ? AND owner = ?
                    """,
                arguments: [state.rawValue, now + retryAfter, String(message.prefix(4000)), now, job.id, job.owner])
        }
        return state
    }

    /// Gives `job` back to the queue without counting its run (it was cut short by a shutdown).
    public func release(_ job: JobRecord) async throws {
        try await finish(
            job, becoming: .pending,
            sql: """
                UPDATE _microlith_jobs SET state = ?, attempts = MAX(attempts - 1, 0), lease_until = NULL, updated = ?
                WHERE id = ? AND owner = ?
                """)
    }

    /// Runs `sql` on `job`, its arguments the new state, the time, the job's id and owner.
    private func finish(_ job: JobRecord, becoming state: State, sql: String) async throws {
        try await store.write(database: job.database) { txn in
            try txn.db.execute(sql: sql, arguments: [state.rawValue, txn.wallClock(), job.id, job.owner])
        }
    }

    /// A dead (or done) job made pending again with fresh attempts; `nil` when there is no such job.
    /// - Throws: ``StoreError/Code/versionMismatch`` when the job is pending or running.
    public func retry(database: String, id: Int64) async throws -> JobRecord? {
        try await store.write(database: database) { txn in
            guard let row = try Row.fetchOne(txn.db, sql: "SELECT \(Self.columns) FROM _microlith_jobs WHERE id = ?", arguments: [id]) else {
                return nil
            }
            let job = try Self.record(row, database: database)
            guard job.state == .dead || job.state == .done else {
                throw StoreError(.versionMismatch, "job \(id) is \(job.state.rawValue); only dead or done jobs can be retried")
            }
            let now = txn.wallClock()
            try txn.db.execute(
                sql: "UPDATE _microlith_jobs SET state = ?, attempts = 0, run_at = ?, lease_until = NULL, updated = ? WHERE id = ?",
                arguments: [State.pending.rawValue, now, now, id])
            return try Row.fetchOne(txn.db, sql: "SELECT \(Self.columns) FROM _microlith_jobs WHERE id = ?", arguments: [id]).map {
                try Self.record($0, database: database)
            }
        }
    }

    /// The job `id` of `database`, or `nil`.
    public func job(database: String, id: Int64) async throws -> JobRecord? {
        try await store.read(database: database) { db in
            try Row.fetchOne(db, sql: "SELECT \(Self.columns) FROM _microlith_jobs WHERE id = ?", arguments: [id]).map {
                try Self.record($0, database: database)
            }
        }
    }

    /// Jobs of `database`, newest first, optionally only those in `state` or named `name`.
    public func list(database: String, state: JobRecord.State? = nil, name: String? = nil, limit: Int = 100) async throws -> [JobRecord] {
        try await store.read(database: database) { db in
            var conditions: [String] = []
            var arguments = StatementArguments()
            if let state {
                conditions.append("state = ?")
                arguments += [state.rawValue]
            }
            if let name {
                conditions.append("name = ?")
                arguments += [name]
            }
            arguments += [limit]
            let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            return try Row.fetchAll(
                db, sql: "SELECT \(Self.columns) FROM _microlith_jobs \(whereClause) ORDER BY id DESC LIMIT ?", arguments: arguments
            ).map { try Self.record($0, database: database) }
        }
    }

    /// How many jobs of `database` are in each state.
    public func counts(database: String) async throws -> [JobRecord.State: Int] {
        try await store.read(database: database) { db in
            var counts: [JobRecord.State: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) FROM _microlith_jobs GROUP BY state") {
                if let state = JobRecord.State(rawValue: row[0]) { counts[state] = row[1] }
            }
            return counts
        }
    }

    /// Deletes done jobs last updated before `cutoff` (milliseconds since 1970); returns how many.
    @discardableResult
    public func trimDone(database: String, before cutoff: Int64) async throws -> Int {
        try await store.write(database: database) { txn in
            try txn.db.execute(sql: "DELETE FROM _microlith_jobs WHERE state = ? AND updated < ?", arguments: [State.done.rawValue, cutoff])
            return txn.db.changesCount
        }
    }
}
