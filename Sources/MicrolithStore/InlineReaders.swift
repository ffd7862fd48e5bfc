import GRDB
import GRDBSQLite
import Synchronization

/// Read-only connections of one database for reads that run on the calling thread
/// (``Store/readInline(database:_:)``), apart from the pool's readers.
///
/// Taking one never waits: when every connection is in use (and ``limit`` are open) the caller
/// reads through the pool instead. Waiting here could deadlock: the calling thread is an event
/// loop, and a pool reader is only given back when the task that holds it resumes on an event
/// loop. A connection is held only for one synchronous read, never across a suspension, so a
/// few cover every thread that runs tasks.
///
/// A read here has a budget of SQLite work (virtual machine steps, counted by a progress
/// handler): one that needs more is interrupted and the caller reads through the pool instead,
/// so a read that turns out larger than its plan promised holds up an event loop for a bounded
/// time only. Nor does a read wait for a lock: a connection that meets one (SQLITE_BUSY) leaves
/// the read to the pool, whose readers wait on threads of their own.
final class InlineReaders: Sendable {
    /// The most connections open at once.
    let limit: Int
    private let open: @Sendable () throws -> DatabaseQueue
    private let state = Mutex<State>(State())

    private struct State: ~Copyable {
        var idle: [DatabaseQueue] = []
        var opened = 0
        var closed = false
    }

    private enum Take {
        case reuse(DatabaseQueue)
        case open
        case none
    }

    init(limit: Int, open: @escaping @Sendable () throws -> DatabaseQueue) {
        self.limit = limit
        self.open = open
    }

    /// SQLite virtual machine steps between two calls of the progress handler.
    static let stepsPerCheck: Int32 = 1_000

    /// The SQLite work a read may do before it is handed to the pool: about a millisecond.
    static let defaultBudget = 100_000

    /// `work` run on an idle connection (opened now when fewer than ``limit`` are), in a read
    /// transaction; `nil` when none is free or can be opened, when the readers are closed, or
    /// when `work` needed more than `budget` SQLite steps (it was interrupted: run it elsewhere).
    func read<T>(budget: Int = InlineReaders.defaultBudget, _ work: (Database) throws -> T) throws -> T? {
        let take = state.withLock { s -> Take in
            if s.closed { return .none }
            if let q = s.idle.popLast() { return .reuse(q) }
            guard s.opened < limit else { return .none }
            s.opened += 1
            return .open
        }
        let queue: DatabaseQueue
        switch take {
        case .none:
            return nil
        case .reuse(let q):
            queue = q
        case .open:
            do {
                queue = try open()
            } catch {
                // The pool may still read (and says what is wrong if it cannot).
                state.withLock { $0.opened -= 1 }
                return nil
            }
        }
        defer { giveBack(queue) }
        let meter = WorkMeter(checks: max(1, budget / Int(Self.stepsPerCheck)))
        do {
            return try queue.read { db in
                let connection = db.sqliteConnection
                sqlite3_progress_handler(
                    connection, Self.stepsPerCheck,
                    { context in
                        let meter = Unmanaged<WorkMeter>.fromOpaque(context!).takeUnretainedValue()
                        meter.checks -= 1
                        if meter.checks > 0 { return 0 }
                        meter.exhausted = true
                        return 1
                    }, Unmanaged.passUnretained(meter).toOpaque())
                defer { sqlite3_progress_handler(connection, 0, nil, nil) }
                return try work(db)
            }
        } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED {
            // The connections do not wait for a lock (that would stall an event loop): the pool does.
            return nil
        } catch {
            if meter.exhausted { return nil }
            throw error
        }
    }

    /// What is left of one read's budget (touched only by the thread running the read).
    private final class WorkMeter {
        var checks: Int
        var exhausted = false
        init(checks: Int) { self.checks = checks }
    }

    private func giveBack(_ queue: DatabaseQueue) {
        let keep = state.withLock { s -> Bool in
            if s.closed {
                s.opened -= 1
                return false
            }
            s.idle.append(queue)
            return true
        }
        if !keep { try? queue.close() }
    }

    /// Closes the idle connections; one in use closes when its read ends.
    func close() {
        let idle = state.withLock { s -> [DatabaseQueue] in
            s.closed = true
            defer {
                s.opened -= s.idle.count
                s.idle = []
            }
            return s.idle
        }
        for q in idle { try? q.close() }
    }
}
