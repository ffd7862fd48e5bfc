import Dispatch
import GRDB
import Synchronization

/// The single writer of one database: runs queued write jobs, many per SQLite transaction, so
/// concurrent writers share one commit (and one fsync).
///
/// A job that throws is rolled back alone and the others still commit. Each job runs in a
/// savepoint of its own, unless every job of the batch is *replayable* (it touches nothing but
/// the transaction it is given): such a batch runs without savepoints, and a job that throws
/// after changing rows (or because the database failed) undoes the whole transaction, which
/// then runs again with a savepoint per job. No job is acknowledged before the transaction
/// holding it has committed.
///
/// The batches run on a serial `DispatchQueue` of their own, not in a task: SQLite's calls
/// block their thread (the commit's fsync for milliseconds), and a blocked thread of Swift's
/// cooperative pool, or of an event loop when NIO is the global executor, stalls every task or
/// connection scheduled on it. One queue per database also keeps the writes of a file strictly
/// one after another, which SQLite requires anyway.
final class GroupCommitWriter: Sendable {
    struct Job: Sendable {
        /// Runs the job's work; returns what to do once the batch has committed.
        let perform: @Sendable (WriteTransaction) throws -> @Sendable () -> Void
        /// Reports a failure (the job's own, or the batch's commit).
        let fail: @Sendable (any Error) -> Void
        /// Whether `perform` touches nothing but the transaction it is given, so that running it
        /// again after a rollback is the same as running it once.
        let replayable: Bool
    }

    /// What running a batch's jobs in one transaction gave.
    private struct Outcome {
        var completions: [@Sendable () -> Void] = []
        var failures: [(Job, any Error)] = []
        var transactions: [WriteTransaction] = []
    }

    /// Thrown inside a batch without savepoints when a job that changed rows, or that the
    /// database failed, throws: the transaction is rolled back and the batch runs again, each job
    /// in its own savepoint.
    private struct Replay: Error {}

    private struct State {
        var pending: [Job] = []
        var draining = false
        var closed = false
    }

    private let state = Mutex(State())
    private let queue: DispatchQueue
    private let pool: DatabasePool
    private let maximumBatch: Int
    private let makeTransaction: @Sendable (Database) -> WriteTransaction
    private let committed: @Sendable ([WriteTransaction]) -> Void
    private let ended: @Sendable () -> Void
    /// Commits, batch sizes and commit times, for metrics.
    let statistics = Mutex(WriteStatistics())

    init(
        name: String,
        pool: DatabasePool,
        maximumBatch: Int,
        makeTransaction: @escaping @Sendable (Database) -> WriteTransaction,
        committed: @escaping @Sendable ([WriteTransaction]) -> Void,
        ended: @escaping @Sendable () -> Void = {}
    ) {
        self.queue = DispatchQueue(label: "microlith.writer.\(name)")
        self.pool = pool
        self.maximumBatch = max(1, maximumBatch)
        self.makeTransaction = makeTransaction
        self.committed = committed
        self.ended = ended
        // A job in a savepoint makes SQLite keep the original of every page the job changes
        // in a sub-journal, which past 64 KiB spills to a temporary file; with temp_store = MEMORY
        // it stays in memory (emptied whenever a job's savepoint is released).
        // The writer also reads the index pages every write touches; SQLite's default 2 MB page
        // cache holds few of them once a table has some 100,000 records (a miss is a pread). The
        // budget is an upper bound: the cache only grows as pages are read.
        // A commit of a batch writes a WAL frame for every distinct page it changed (random keys
        // put each record on pages of its own in the table, each index and each side table: some
        // 8 pages per record). SQLite's default automatic checkpoint, every 1,000 frames, then
        // runs every two or three commits, on this thread, copying nearly every frame back into
        // the database file with one more fsync. Every 8,192 frames (32 MiB of WAL at 4 KiB pages)
        // pages changed by many commits are copied once: fewer writes and fsyncs per record.
        try? pool.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA wal_autocheckpoint = \(Self.checkpointFrames)")
            try db.execute(sql: "PRAGMA temp_store = MEMORY")
            try db.execute(sql: "PRAGMA cache_size = -\(Self.pageCacheKiB)")
        }
    }

    /// WAL frames between automatic checkpoints of the writer connection.
    static let checkpointFrames = 8192

    /// The writer connection's page cache budget, in KiB.
    static let pageCacheKiB = 16384

    /// Runs `work` in a write transaction and returns its result once the transaction is durable.
    ///
    /// - Parameter replayable: `work` touches nothing but the transaction it is given (no state
    ///   of its own, no other effect), so the writer may run it again after a rollback, and spare
    ///   it its savepoint.
    func submit<T: Sendable>(replayable: Bool = false, _ work: @escaping @Sendable (WriteTransaction) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let job = Job(
                perform: { txn in
                    let value = try work(txn)
                    return { continuation.resume(returning: value) }
                },
                fail: { continuation.resume(throwing: $0) },
                replayable: replayable
            )
            enqueue(job)
        }
    }

    private enum Admission {
        case refused, queued, startDraining
    }

    private func enqueue(_ job: Job) {
        let admission: Admission = state.withLock { s in
            if s.closed { return .refused }
            s.pending.append(job)
            if s.draining { return .queued }
            s.draining = true
            return .startDraining
        }
        switch admission {
        case .refused: job.fail(StoreError(.closed, "the store is closed"))
        case .queued: break
        case .startDraining: queue.async { self.drain() }
        }
    }

    /// Refuses new jobs; jobs already queued still run.
    func close() {
        state.withLock { $0.closed = true }
        queue.sync {}
    }

    private func drain() {
        while true {
            let batch: [Job] = state.withLock { s in
                if s.pending.isEmpty {
                    s.draining = false
                    return []
                }
                let n = min(s.pending.count, maximumBatch)
                let batch = Array(s.pending.prefix(n))
                s.pending.removeFirst(n)
                return batch
            }
            if batch.isEmpty { return }
            run(batch)
        }
    }

    private func run(_ batch: [Job]) {
        var outcome = Outcome()
        var committing = ContinuousClock.now
        var savepoints = false
        do {
            try pool.writeWithoutTransaction { db in
                // A savepoint copies the original of every page its job changes (some 8 pages of
                // 4 KiB for a new record with a random key): a batch of replayable jobs goes without.
                let replayable = batch.allSatisfy(\.replayable)
                savepoints = !replayable
                do {
                    outcome = try transaction(db, batch, savepoints: savepoints, committing: &committing)
                } catch is Replay {
                    statistics.withLock { $0.replays &+= 1 }
                    savepoints = true
                    outcome = try transaction(db, batch, savepoints: true, committing: &committing)
                }
            }
            let commit = ContinuousClock.now - committing
            statistics.withLock { $0.record(batch: batch.count, commit: commit, savepoints: savepoints) }
        } catch {
            ended()
            let failure = StoreError(.storage, "the write could not be committed: \(error)", underlying: error)
            for job in batch { job.fail(failure) }
            return
        }
        // Before any job is acknowledged: a read that starts after an acknowledgment must see it.
        ended()
        committed(outcome.transactions)
        for c in outcome.completions { c() }
        for (job, error) in outcome.failures { job.fail(error) }
    }

    /// Runs `batch` in one immediate transaction and commits it. With `savepoints`, each job runs
    /// in its own; without, a job that throws having changed no row is simply left out, and one
    /// that changed rows or that the database failed throws ``Replay`` (the transaction is
    /// rolled back).
    private func transaction(_ db: Database, _ batch: [Job], savepoints: Bool, committing: inout ContinuousClock.Instant) throws -> Outcome {
        var outcome = Outcome()
        try db.inTransaction(.immediate) {
            for job in batch {
                let txn = makeTransaction(db)
                let changesBefore = savepoints ? 0 : db.totalChangesCount
                do {
                    let completion = savepoints ? try Self.inSavepoint(db) { try job.perform(txn) } : try job.perform(txn)
                    outcome.completions.append(completion)
                    outcome.transactions.append(txn)
                } catch {
                    // Without a savepoint, only a job refused for what it asked, having changed
                    // nothing, can be left out alone. A failure of the database (SQLite's errors)
                    // may leave half a statement behind (a one-row insert has no statement journal
                    // to undo it), or may have ended SQLite's transaction; a job that changed rows
                    // must be undone whole.
                    let databaseFailed = StoreError.classify(error)?.isDatabaseFailure == true
                    if !savepoints, databaseFailed || db.totalChangesCount != changesBefore || !db.isInsideTransaction {
                        throw Replay()
                    }
                    outcome.failures.append((job, error))
                }
            }
            committing = ContinuousClock.now
            return .commit
        }
        return outcome
    }

    /// Runs `work` in a savepoint of the open transaction: its writes are undone when it throws.
    ///
    /// Like GRDB's `inSavepoint`, with the three statements prepared once per connection instead
    /// of parsed on every job.
    private static func inSavepoint<T>(_ db: Database, _ work: () throws -> T) throws -> T {
        try db.cachedStatement(sql: "SAVEPOINT microlith_job").execute()
        let value: T
        do {
            value = try work()
        } catch {
            // When the transaction itself was aborted these fail too; the commit then reports it.
            try? db.cachedStatement(sql: "ROLLBACK TO SAVEPOINT microlith_job").execute()
            try? db.cachedStatement(sql: "RELEASE SAVEPOINT microlith_job").execute()
            throw error
        }
        try db.cachedStatement(sql: "RELEASE SAVEPOINT microlith_job").execute()
        return value
    }
}
