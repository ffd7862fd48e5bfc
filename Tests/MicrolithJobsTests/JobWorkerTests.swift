import Foundation
import Logging
import MicrolithModules
import MicrolithStore
import Synchronization
import Testing

@testable import MicrolithJobs

@Suite struct JobWorkerTests {
    func worker(_ f: JobsFixture, _ configure: (inout JobConfiguration) -> Void = { _ in }) -> JobWorker {
        var c = JobConfiguration(pollInterval: .milliseconds(50), lease: .seconds(30))
        configure(&c)
        return JobWorker(store: f.store, modules: f.modules, configuration: c, logger: Logger(label: "test"))
    }

    @Test func aJobEnqueuedInARolledBackTransactionNeverExists() async throws {
        let f = try JobsFixture()
        defer { f.close() }
        struct Refused: Error {}
        await #expect(throws: Refused.self) {
            try await f.store.write { txn in
                try txn.insert(orders, Order(id: "o1", total: 5))
                try txn.enqueue(TestJobs.note, Note(key: "rolled-back"))
                throw Refused()
            }
        }
        try await f.store.write { txn in
            try txn.insert(orders, Order(id: "o2", total: 7))
            try txn.enqueue(TestJobs.note, Note(key: "committed"))
        }
        let queue = JobQueue(store: f.store)
        let jobs = try await queue.list(database: "data")
        #expect(jobs.map(\.name) == ["test.note"])
        #expect(jobs.first?.payload.contains("committed") == true)
        try await f.running([worker(f)]) { () async throws in
            #expect(try await f.eventually { f.journal.count("committed") == 1 })
            #expect(try await f.eventually { try await queue.job(database: "data", id: jobs[0].id)?.state == .done })
        }
        #expect(f.journal.count("rolled-back") == 0)
        #expect(try await f.store.get(orders, "o1") == nil)
    }

    @Test func aFailingJobIsRetriedWithBackoffUntilItSucceeds() async throws {
        let f = try JobsFixture()
        defer { f.close() }
        let id = try await f.store.write { txn in try txn.enqueue(TestJobs.note, Note(key: "flaky", failures: 2)) }
        let queue = JobQueue(store: f.store)
        try await f.running([worker(f)]) { () async throws in
            // Two backoffs of real time (1 s, then 2 s) come first; a loaded machine stretches them.
            #expect(try await f.eventually(30) { try await queue.job(database: "data", id: id)?.state == .done })
        }
        let job = try #require(try await queue.job(database: "data", id: id))
        #expect(f.journal.count("flaky") == 3)
        #expect([1, 2, 3].map { f.journal.count("attempt:\($0)") } == [1, 1, 1], "each run knows its attempt number")
        #expect(job.attempts == 3)
        #expect(job.lastError == nil)
    }

    @Test func aJobThatKeepsFailingEndsDeadAndCanBeRetriedByHand() async throws {
        let f = try JobsFixture()
        defer { f.close() }
        let id = try await f.store.write { txn in try txn.enqueue(TestJobs.note, Note(key: "broken", failures: 100)) }
        let queue = JobQueue(store: f.store)
        try await f.running([worker(f)]) { () async throws in
            // Two backoffs of real time (1 s, then 2 s) come first; a loaded machine stretches them.
            #expect(try await f.eventually(30) { try await queue.job(database: "data", id: id)?.state == .dead })
            // No further runs once dead.
            try await Task.sleep(for: .milliseconds(200))
            #expect(f.journal.count("broken") == 3)
            let job = try #require(try await queue.job(database: "data", id: id))
            #expect(job.lastError?.contains("planned failure 3 of broken") == true)
            #expect(try await queue.counts(database: "data")[.dead] == 1)
            // A hand retry runs it again with fresh attempts.
            let retried = try await queue.retry(database: "data", id: id)
            #expect(retried?.state == .pending)
            #expect(retried?.attempts == 0)
            #expect(try await f.eventually(30) { f.journal.count("broken") == 6 })
        }
    }

    @Test func aRunningJobCannotBeRetriedByHand() async throws {
        let f = try JobsFixture()
        defer { f.close() }
        let id = try await f.store.write { txn in try txn.enqueue(TestJobs.note, Note(key: "x")) }
        let queue = JobQueue(store: f.store)
        _ = try await queue.claim(database: "data", names: ["test.note"], limit: 1, owner: "other", leaseMilliseconds: 60_000)
        let error = await #expect(throws: StoreError.self) { _ = try await queue.retry(database: "data", id: id) }
        #expect(error?.message.contains("running") == true)
        #expect(try await queue.retry(database: "data", id: id + 1) == nil)
    }

    @Test func aJobWhoseWorkerDiedRunsAgainWhenItsLeaseExpires() async throws {
        let f = try JobsFixture()
        defer { f.close() }
        let id = try await f.store.write { txn in try txn.enqueue(TestJobs.note, Note(key: "orphan")) }
        let queue = JobQueue(store: f.store)
        // Another worker takes it and dies (never renews or finishes).
        let taken = try await queue.claim(database: "data", names: ["test.note"], limit: 10, owner: "dead-worker", leaseMilliseconds: 5_000)
        #expect(taken.map(\.id) == [id])
        try await f.running([worker(f)]) { () async throws in
            try await Task.sleep(for: .milliseconds(200))
            #expect(f.journal.count("orphan") == 0, "a job under a live lease is not taken")
            f.advance(6_000)
            #expect(try await f.eventually { try await queue.job(database: "data", id: id)?.state == .done })
        }
        let job = try #require(try await queue.job(database: "data", id: id))
        #expect(job.attempts == 2)
        #expect(job.owner != "dead-worker")
    }

    @Test func shutdownGivesBackJobsThatDoNotFinishInTime() async throws {
        let f = try JobsFixture()
        defer { f.close() }
        let id = try await f.store.write { txn in try txn.enqueue(TestJobs.slow, Note(key: "long")) }
        let queue = JobQueue(store: f.store)
        let stopping = Mutex<ContinuousClock.Instant?>(nil)
        try await f.running([worker(f) { $0.shutdownGrace = .milliseconds(200) }]) { () async throws in
            #expect(try await f.eventually(30) { f.journal.count("long") == 1 })
            stopping.withLock { $0 = ContinuousClock.now }
        }
        // The job would run 30 s; the bound is loose so that a busy machine does not fail the test.
        let stopped = try #require(stopping.withLock { $0 })
        #expect(ContinuousClock.now - stopped < .seconds(20), "shutdown waits for the grace period, not for the job")
        let job = try #require(try await queue.job(database: "data", id: id))
        #expect(job.state == .pending)
        #expect(job.attempts == 0, "a run cut short by shutdown does not count")
    }

    @Test func aWorkerOnlyTakesJobsItCanRun() async throws {
        let f = try JobsFixture()
        defer { f.close() }
        let foreign = Job<Note>(module: "elsewhere", name: "thing")
        let id = try await f.store.write { txn in try txn.enqueue(foreign, Note(key: "foreign")) }
        try await f.running([worker(f)]) { () async throws in
            try await Task.sleep(for: .milliseconds(300))
        }
        #expect(try await JobQueue(store: f.store).job(database: "data", id: id)?.state == .pending)
    }

    @Test func retryBackoffGrowsAndIsCapped() {
        let policy = RetryPolicy(maximumAttempts: 10, initialBackoff: .seconds(1), multiplier: 2, maximumBackoff: .seconds(5))
        #expect((1...5).map { policy.backoffMilliseconds(afterAttempt: $0) } == [1000, 2000, 4000, 5000, 5000])
        #expect(RetryPolicy(maximumAttempts: 0).maximumAttempts == 1)
    }
}
