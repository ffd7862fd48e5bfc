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

/// Whether this process fires the schedules that come due: in a cluster, only the node that
/// holds the cluster's lease does.
public enum ScheduleTurn: Sendable, Equatable {
    /// Fire them: enqueue each due run as a job here.
    case fire
    /// Another process fires them: advance each schedule past its due time without a run.
    case skip
    /// Not known yet (no lease decided): leave every schedule as it is until it is.
    case undecided
}

/// Fires the scheduled tasks of the modules in this process (the `cron` role).
///
/// Each schedule's next due time is kept in the store (`_microlith_schedules`). When it comes,
/// one transaction advances it and enqueues the task as a job, so a run fires once even when
/// several `cron` processes share the store, and it runs at least once, with retries, on a
/// `worker`. Runs missed while no `cron` process was up follow the schedule's
/// ``MissedRunPolicy``: at most one catch-up run, never a pile.
///
/// Nodes of a replicated cluster each have their own store, so `turn` decides: only the node
/// whose turn says ``ScheduleTurn/fire`` (the holder of the cluster's lease) enqueues runs, and
/// they run on that node's workers; the others advance their schedules without a run, so a node
/// that takes the lease over goes on from the current time. While the turn is undecided (no
/// NATS server answers) nothing fires; a run that came due meanwhile fires once when the lease
/// is decided, on the node that holds it.
public final class Scheduler: Service, Sendable {
    public let store: Store
    private let schedules: [ScheduleRegistration]
    private let logger: Logger
    private let database: String
    private let wake = WakeSignal()
    private let turn: @Sendable () -> ScheduleTurn

    /// `turn` says, each time schedules come due, whether this process fires them (always, by
    /// default: one process or several sharing one store).
    public init(store: Store, modules: Modules, logger: Logger, turn: @escaping @Sendable () -> ScheduleTurn = { .fire }) {
        self.store = store
        self.schedules = modules.schedules
        self.logger = logger
        self.database = store.databaseNames.first ?? Schema.defaultDatabase
        self.turn = turn
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
        await withGracefulShutdownHandler {
            var waiter = wake.makeWaiter()
            var caughtUp = false
            var waited = false
            while !Task.isCancelled {
                let next: Int64
                let turn = self.turn()
                do {
                    if turn == .undecided {
                        if !waited {
                            logger.notice("scheduler waits for the cluster's lease to be decided before it fires anything")
                            waited = true
                        }
                        next = store.configuration.wallClock() + 200
                    } else if !caughtUp {
                        try await catchUp(enqueue: turn == .fire)
                        let names = schedules.map(\.qualifiedName).joined(separator: ",")
                        logger.info("scheduler started", metadata: ["schedules": "\(names)", "turn": "\(turn)"])
                        caughtUp = true
                        next = store.configuration.wallClock()
                    } else {
                        next = try await fireDue(enqueue: turn == .fire)
                    }
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

    /// On start: registers new schedules and applies the missed-run policy to overdue ones
    /// (without `enqueue`, another process fires: overdue ones only move on to their next time).
    func catchUp(enqueue: Bool = true) async throws {
        let schedules = self.schedules
        let fired: [(String, Int)] = try await store.write(database: database) { txn in
            let now = txn.wallClock()
            var fired: [(String, Int)] = []
            for r in schedules {
                let spec = Self.spec(r)
                let row = try Row.fetchOne(
                    txn.db, sql: "SELECT next_run, spec, last_run FROM _microlith_schedules WHERE name = ?", arguments: [r.qualifiedName])
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
                if r.missed == .runOnce && enqueue {
                    try txn.enqueue(
                        Job<ScheduledRun>(module: r.module, name: r.name, retry: r.retry), ScheduledRun(dueAt: t, missedRuns: missed))
                    fired.append((r.qualifiedName, missed + 1))
                }
                try txn.db.execute(
                    sql: "UPDATE _microlith_schedules SET next_run = ?, last_run = ? WHERE name = ?",
                    arguments: [r.next(after: now) ?? Int64.max, r.missed == .runOnce && enqueue ? now : row[2] as Int64?, r.qualifiedName])
            }
            return fired
        }
        for (name, count) in fired {
            logger.notice("schedule \(name) missed \(count) run(s) while no cron process was up; running it once now (policy runOnce)")
        }
    }

    /// Fires every schedule that is due (without `enqueue`, only moves it on to its next time);
    /// returns when the next one is due. Reads only, unless something is due.
    func fireDue(enqueue: Bool = true) async throws -> Int64 {
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
                    sql: """
                        UPDATE _microlith_schedules SET next_run = ?, last_run = CASE WHEN ? THEN ? ELSE last_run END
                        WHERE name = ? AND next_run = ?
                        """,
                    arguments: [next, enqueue, due, r.qualifiedName, due])
                if txn.db.changesCount == 1 && enqueue {
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
