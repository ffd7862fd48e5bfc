import Foundation
import GRDB
public import MicrolithModules
public import MicrolithStore

extension WriteTransaction {
    /// Adds `job` with `input` to the queue of this transaction's database. The job exists if and
    /// only if the transaction commits; a worker runs it after `delay` (from now), and a worker of
    /// this process is woken as soon as the transaction commits.
    /// - Returns: the job's id (`GET /_jobs/{id}` shows its state).
    @discardableResult
    public func enqueue<Input>(_ job: Job<Input>, _ input: Input, after delay: Duration = .zero) throws -> Int64 {
        let payload: Data
        do {
            payload = try JSONEncoder().encode(input)
        } catch {
            throw StoreError(.invalidRecord, "the input of job \(job.qualifiedName) cannot be encoded: \(error)", underlying: error)
        }
        let now = wallClock()
        try db.execute(
            sql: """
                INSERT INTO _microlith_jobs(name, payload, state, attempts, max_attempts, run_at, created, updated)
                VALUES (?, ?, ?, 0, ?, ?, ?, ?)
                """,
            arguments: [
                job.qualifiedName, String(decoding: payload, as: UTF8.self), JobRecord.State.pending.rawValue, job.retry.maximumAttempts,
                now + max(0, JobConfiguration.milliseconds(delay)), now, now,
            ])
        notify(JobQueue.enqueuedChannel)
        return db.lastInsertedRowID
    }
}
