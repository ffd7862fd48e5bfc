import GRDB
public import Logging
package import MicrolithJSON
public import MicrolithModules
import MicrolithSchema
public import MicrolithStore
public import ServiceLifecycle
import Synchronization

/// A schedule's state as `/_schedules` shows it.
package struct ScheduleState: Sendable, Equatable {
    /// `module.name`.
    public var name: String
    /// `cron 0 3 * * *` or `every 60 seconds`.
    public var spec: String
    /// When it is next due (milliseconds since 1970).
    public var nextRun: Int64
    /// When it last fired, if ever.
    public var lastRun: Int64?

    public var json: JSONValue {
        var o = JSONObject()
        o["name"] = .string(name)
        o["schedule"] = .string(spec)
        o["nextRun"] = .string(DateValue.format(nextRun))
        o["lastRun"] = lastRun.map { .string(DateValue.format($0)) } ?? .null
        return .object(o)
    }
}

/// Fires the scheduled tasks of the modules in this process (the `cron` role).
///
/// Each schedule's next due time is kept in the store (`_microlith_schedules`). When it comes,
/// one transaction advances it and enqueues the task as a job, so a run fires once even when
/// several `cron` processes share the store, and it runs at least once, with retries, on a
/// `worker`. Runs missed while no `cron` process was up follow the schedule's
/// ``MissedRunPolicy``: at most one catch-up run, never a pile.
public final class Scheduler: Service, Sendable {
    public let store: Store
    private let schedules: [ScheduleRegistration]
    private let logger: Logger
    private let database: String
    private let wake = WakeSignal()

    public init(store: Store, modules: Modules, logger: Logger) {
        self.store = store
        self.schedules = modules.schedules
        self.logger = logger
        self.database = store.databaseNames.first ?? Schema.defaultDatabase
    }

    static func spec(_ r: ScheduleRegistration) -> String {
        switch r.schedule {
        case .cron(let text): return "cron \(r.cron?.description ?? text)"
        case .every: return "every \((r.intervalMilliseconds ?? 0) / 1000) seconds"
        }
    }

    public func run() async throws {
        guard !schedules.isEmpty else {
            try? await gracefulShutdown()
            return
        }
        try await catchUp()
        logger.info("scheduler started", metadata: ["schedules": "\(schedules.map(\.qualifiedName).joined(separator: ","))"])
        await withGracefulShutdownHandler {
            var waiter = wake.makeWaiter()
            while !Task.isCancelled {
                let next: Int64
                do {
                    next = try await fireDue()
                } catch {
                    logger.error("scheduler cannot fire due tasks", metadata: ["error": "\(error)"])
                    next = store.configuration.wallClock() + 1000
                }
                // At most a second: a wall clock that jumps is noticed soon.
                let delay = max(10, min(next - store.configuration.wallClock(), 1000))
                await waiter.wait(upTo: .milliseconds(delay))
                if stopped.load(ordering: .acquiring) || Task.isCancelled { break }
            }
        } onGracefulShutdown: {
            self.stopped.store(true, ordering: .releasing)
            self.wake.signal()
        }
    }

    private let stopped = Atomic<Bool>(false)

    /// On start: registers new schedules and applies the missed-run policy to overdue ones.
    func catchUp() async throws {
        let schedules = self.schedules
        let fired: [(String, Int)] = try await store.write(database: database) { txn in
            let now = txn.wallClock()
            var fired: [(String, Int)] = []
            for r in schedules {
                let spec = Self.spec(r)
                let row = try Row.fetchOne(
                    txn.db, sql: "SELECT next_run, spec FROM _microlith_schedules WHERE name = ?", arguments: [r.qualifiedName])
                guard let row, row[1] as String == spec else {
                    // New, or its schedule changed: due next from now.
                    try txn.db.execute(
                        sql: "INSERT OR REPLACE INTO _microlith_schedules(name, next_run, last_run, spec) VALUES (?, ?, NULL, ?)",
                        arguments: [r.qualifiedName, r.next(after: now) ?? Int64.max, spec])
                    continue
                }
                let due: Int64 = row[0]
                guard due <= now else { continue }
                var missed = 0
                var t = due
                while let n = r.next(after: t), n <= now, missed < 100_000 {
                    missed += 1
                    t = n
                }
                if r.missed == .runOnce {
                    try txn.enqueue(
                        Job<ScheduledRun>(module: r.module, name: r.name, retry: r.retry), ScheduledRun(dueAt: t, missedRuns: missed))
                    fired.append((r.qualifiedName, missed + 1))
                }
                try txn.db.execute(
                    sql: "UPDATE _microlith_schedules SET next_run = ?, last_run = ? WHERE name = ?",
                    arguments: [r.next(after: now) ?? Int64.max, r.missed == .runOnce ? now : nil, r.qualifiedName])
            }
            return fired
        }
        for (name, count) in fired {
            logger.notice("schedule \(name) missed \(count) run(s) while no cron process was up; running it once now (policy runOnce)")
        }
    }

    /// Fires every schedule that is due; returns when the next one is due. Reads only, unless
    /// something is due.
    func fireDue() async throws -> Int64 {
        let schedules = self.schedules
        let names = schedules.map(\.qualifiedName)
        let stored: [String: Int64] = try await store.read(database: database) { db in
            var result: [String: Int64] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT name, next_run FROM _microlith_schedules") { result[row[0]] = row[1] }
            return result
        }
        let now = store.configuration.wallClock()
        let due = names.filter { (stored[$0] ?? Int64.max) <= now }
        guard !due.isEmpty else { return stored.filter { names.contains($0.key) }.values.min() ?? Int64.max }
        return try await store.write(database: database) { txn in
            let now = txn.wallClock()
            var earliest = Int64.max
            for r in schedules {
                guard
                    let due = try Int64.fetchOne(
                        txn.db, sql: "SELECT next_run FROM _microlith_schedules WHERE name = ?", arguments: [r.qualifiedName])
                else { continue }
                guard due <= now else {
                    earliest = min(earliest, due)
                    continue
                }
                // The next due time after this one; when the process fell behind, the next after now.
                var next = r.next(after: due) ?? Int64.max
                if next <= now { next = r.next(after: now) ?? Int64.max }
                try txn.db.execute(
                    sql: "UPDATE _microlith_schedules SET next_run = ?, last_run = ? WHERE name = ? AND next_run = ?",
                    arguments: [next, due, r.qualifiedName, due])
                if txn.db.changesCount == 1 {
                    try txn.enqueue(Job<ScheduledRun>(module: r.module, name: r.name, retry: r.retry), ScheduledRun(dueAt: due, missedRuns: 0))
                }
                earliest = min(earliest, next)
            }
            return earliest
        }
    }

    /// Every schedule's state, as stored.
    package static func states(store: Store) async throws -> [ScheduleState] {
        guard let database = store.databaseNames.first else { return [] }
        return try await store.read(database: database) { db in
            try Row.fetchAll(db, sql: "SELECT name, spec, next_run, last_run FROM _microlith_schedules ORDER BY name").map {
                ScheduleState(name: $0[0], spec: $0[1], nextRun: $0[2], lastRun: $0[3])
            }
        }
    }
}
