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
///
/// ## Snapshots kept between reads
/// When this process is the database's only writer (`keepsSnapshots`), a connection's read
/// transaction stays open after a read, and the next read on that connection uses it again as
/// long as nothing has committed since it began. Starting and ending a read transaction costs
/// two statements and, in WAL mode, a lock and an unlock of the shared-memory file (two `fcntl`
/// calls), for every read; under read traffic they are now paid once per commit instead.
/// - Never stale: the writer calls ``writerCommitted()`` after each of its transactions, before
///   any of its writes is acknowledged; a read compares the count of those calls with the one its
///   connection's transaction began at, and starts a new transaction when they differ. A read
///   that begins after a commit was acknowledged therefore sees it.
/// - Never in the way: ``writerCommitted()`` also ends the open transactions of idle
///   connections, so an old snapshot never keeps a checkpoint from reaching the end of the WAL
///   (the WAL would otherwise grow while writes go on and those connections see no reads).
final class InlineReaders: Sendable {
    /// The most connections open at once.
    let limit: Int
    /// Whether read transactions may stay open between reads (see the type's documentation);
    /// `false` when another process may write the database.
    let keepsSnapshots: Bool
    private let open: @Sendable () throws -> DatabaseQueue
    private let state = Mutex<State>(State())
    /// How many transactions the writer has ended (``writerCommitted()``).
    private let commits = Atomic<UInt64>(0)

    /// One connection, and the commit count its open read transaction began at (`nil`: none is
    /// open). Only the thread that took it out of the idle list touches it, until it gives it back.
    private final class Reader: @unchecked Sendable {
        let queue: DatabaseQueue
        var snapshot: UInt64?
        init(_ queue: DatabaseQueue) { self.queue = queue }

        /// Ends the connection's read transaction, if one is open.
        func endTransaction(_ db: Database) {
            snapshot = nil
            if sqlite3_get_autocommit(db.sqliteConnection) == 0 {
                // Ending a read transaction cannot fail in a way that matters here: a connection
                // whose COMMIT fails is rolled back, which ends it too.
                do {
                    try db.cachedStatement(sql: "COMMIT TRANSACTION").execute()
                } catch {
                    try? db.execute(sql: "ROLLBACK TRANSACTION")
                }
            }
        }
    }

    private struct State: ~Copyable {
        var idle: [Reader] = []
        var opened = 0
        var closed = false
    }

    private enum Take {
        case reuse(Reader)
        case open
        case none
    }

    /// - Parameter open: opens a read-only connection; it must allow a transaction to stay open
    ///   between two accesses (GRDB's `allowsUnsafeTransactions`) when `keepsSnapshots` is set.
    init(limit: Int, keepsSnapshots: Bool, open: @escaping @Sendable () throws -> DatabaseQueue) {
        self.limit = limit
        self.keepsSnapshots = keepsSnapshots
        self.open = open
    }

    /// Called by the database's writer after each of its transactions (committed or not), before
    /// the transaction's writes are acknowledged: no read starting afterwards uses an older
    /// snapshot, and the idle connections' snapshots are let go.
    func writerCommitted() {
        commits.add(1, ordering: .acquiringAndReleasing)
        guard keepsSnapshots else { return }
        let holding = state.withLock { s -> [Reader] in
            guard !s.closed else { return [] }
            var holding: [Reader] = []
            s.idle.removeAll { r in
                guard r.snapshot != nil else { return false }
                holding.append(r)
                return true
            }
            return holding
        }
        guard !holding.isEmpty else { return }
        for r in holding {
            r.queue.inDatabase { db in r.endTransaction(db) }
        }
        for r in holding { giveBack(r) }
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
            if let r = s.idle.popLast() { return .reuse(r) }
            guard s.opened < limit else { return .none }
            s.opened += 1
            return .open
        }
        let reader: Reader
        switch take {
        case .none:
            return nil
        case .reuse(let r):
            reader = r
        case .open:
            do {
                reader = Reader(try open())
            } catch {
                // The pool may still read (and says what is wrong if it cannot).
                state.withLock { $0.opened -= 1 }
                return nil
            }
        }
        defer { giveBack(reader) }
        let meter = WorkMeter(checks: max(1, budget / Int(Self.stepsPerCheck)))
        do {
            return try reader.queue.inDatabase { db in
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
                // Loaded before the transaction begins: a snapshot taken later is at least as new.
                let now = commits.load(ordering: .acquiring)
                if sqlite3_get_autocommit(connection) == 0 {
                    // Open: kept when it began after the last commit, ended otherwise (also when
                    // its start is unknown).
                    if reader.snapshot != now { reader.endTransaction(db) }
                } else {
                    reader.snapshot = nil
                }
                if reader.snapshot == nil {
                    try db.cachedStatement(sql: "BEGIN DEFERRED TRANSACTION").execute()
                    reader.snapshot = now
                }
                let value: T
                do {
                    value = try work(db)
                } catch {
                    // Ended without the budget's handler, which could interrupt the COMMIT too.
                    sqlite3_progress_handler(connection, 0, nil, nil)
                    reader.endTransaction(db)
                    throw error
                }
                if !keepsSnapshots { reader.endTransaction(db) }
                return value
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

    private func giveBack(_ reader: Reader) {
        let keep = state.withLock { s -> Bool in
            if s.closed {
                s.opened -= 1
                return false
            }
            s.idle.append(reader)
            return true
        }
        if !keep { Self.close(reader) }
    }

    private static func close(_ reader: Reader) {
        reader.queue.inDatabase { db in reader.endTransaction(db) }
        try? reader.queue.close()
    }

    /// Closes the idle connections; one in use closes when its read ends.
    func close() {
        let idle = state.withLock { s -> [Reader] in
            s.closed = true
            defer {
                s.opened -= s.idle.count
                s.idle = []
            }
            return s.idle
        }
        for r in idle { Self.close(r) }
    }
}
