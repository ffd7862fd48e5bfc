import Dispatch
import GRDB
import MicrolithJSON
import MicrolithStore
import Testing

/// Holds the store's single writer inside a write until released, so that writes submitted
/// meanwhile queue up behind it.
private struct WriterGate {
    let semaphore = DispatchSemaphore(value: 0)

    /// Starts a write that blocks the writer; returns once the writer is blocked.
    func hold(_ store: Store, _ table: TableLayout) async -> Task<Void, any Error> {
        let (started, continuation) = AsyncStream.makeStream(of: Void.self)
        let semaphore = self.semaphore
        let task = Task { () async throws -> Void in
            try await store.write { (txn: WriteTransaction) -> Void in
                continuation.yield()
                semaphore.wait()
                try txn.put(table, id: .string("gate"), body: ["title": "gate"])
            }
        }
        for await _ in started { break }
        return task
    }

    func release() { semaphore.signal() }
}

/// Runs `count` writes concurrently while the writer is held, releasing it once every write has
/// been submitted; returns the results in submission order.
private func concurrentWrites<T: Sendable>(
    _ store: Store, _ table: TableLayout, count: Int, _ write: @escaping @Sendable (Int) async throws -> T
) async throws -> [Result<T, any Error>] {
    let gate = WriterGate()
    let holder = await gate.hold(store, table)
    let (submitted, submittedContinuation) = AsyncStream.makeStream(of: Void.self)
    let results = await withTaskGroup(of: (Int, Result<T, any Error>).self) { group in
        for i in 0..<count {
            group.addTask {
                submittedContinuation.yield()
                do {
                    return (i, .success(try await write(i)))
                } catch {
                    return (i, .failure(error))
                }
            }
        }
        var seen = 0
        for await _ in submitted {
            seen += 1
            if seen == count { break }
        }
        gate.release()
        var results: [Result<T, any Error>?] = Array(repeating: nil, count: count)
        for await (i, result) in group { results[i] = result }
        return results.map { $0! }
    }
    try await holder.value
    return results
}

@Suite("Store: group commit")
struct GroupCommitTests {
    @Test func concurrentWritesAllSucceedAndAreAllVisible() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")
        let commits = SharedCounter()
        let changes = SharedCounter()
        store.onCommit { batch in
            commits.increment()
            changes.increment(by: batch.count)
        }

        let count = 200
        let results = try await concurrentWrites(store, todo, count: count) { i in
            try await store.put(todo, .string("r\(i)"), ["title": .string("record \(i)"), "priority": .int(Int64(i))])
        }
        for (i, result) in results.enumerated() {
            let record = try result.get()
            #expect(record.record["priority"] == .int(Int64(i)))
        }
        for i in 0..<count {
            #expect(try await store.get(todo, .string("r\(i)"))?.record["title"] == .string("record \(i)"))
        }
        let log = try await store.changes(after: 0, limit: 10_000)
        #expect(log.count == count + 1)
        #expect(Set(log.map(\.id)).count == count + 1)
        #expect(changes.current == count + 1)
        // The writes queued behind the held one share commits: fewer commits than writes.
        #expect(commits.current < count + 1, "\(commits.current) commits for \(count + 1) writes")
    }

    @Test func aBatchNeverHoldsMoreThanTheMaximum() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let store = try openStore(directory, maximumBatch: 4)
        defer { store.close() }
        let todo = try store.layout("Todo")
        let batchSizes = SharedLog()
        store.onCommit { batch in batchSizes.append(["\(batch.count)"]) }

        let count = 40
        let results = try await concurrentWrites(store, todo, count: count) { i in
            try await store.put(todo, .string("r\(i)"), ["title": "x"])
        }
        #expect(results.allSatisfy { (try? $0.get()) != nil })
        let sizes = batchSizes.entries.compactMap { Int($0) }
        #expect(sizes.reduce(0, +) == count + 1)
        #expect(sizes.allSatisfy { $0 <= 4 }, "batch sizes \(sizes)")
        #expect(sizes.count >= (count + 1 + 3) / 4)
    }

    @Test func aFailingWriteIsRolledBackAloneWhileItsBatchCommits() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")

        let results = try await concurrentWrites(store, todo, count: 21) { i in
            try await store.write { (txn: WriteTransaction) -> Void in
                try txn.put(todo, id: .string("r\(i)"), body: ["title": "ok"])
                if i == 10 {
                    // Valid first write, then an invalid one: the whole job must vanish.
                    try txn.put(todo, id: .string("r10-extra"), body: ["title": 10])
                }
            }
        }
        for (i, result) in results.enumerated() {
            if i == 10 {
                #expect(throws: StoreError.self) { try result.get() }
                #expect(try await store.get(todo, .string("r10")) == nil)
                #expect(try await store.get(todo, .string("r10-extra")) == nil)
            } else {
                #expect(throws: Never.self) { try result.get() }
                #expect(try await store.get(todo, .string("r\(i)")) != nil)
            }
        }
        let log = try await store.changes(after: 0)
        #expect(log.count == 21, "the gate's write and the 20 good ones")
        #expect(!log.contains { $0.id == .string("r10") })
    }

    /// Writes `count` replayable jobs in one batch; job `i` counts its runs in `runs[i]`, job
    /// `refusedEarly` throws before writing, job `refusedLate` after writing.
    private func replayableBatch(
        _ store: Store, _ todo: TableLayout, count: Int, refusedEarly: Int?, refusedLate: Int?, runs: [SharedCounter],
        sqliteErrorEarly: Int? = nil
    ) async throws -> [Result<Void, any Error>] {
        try await concurrentWrites(store, todo, count: count) { i in
            try await store.write(replayable: true) { (txn: WriteTransaction) -> Void in
                runs[i].increment()
                if i == refusedEarly { throw StoreError(.invalidRecord, "refused before writing") }
                if i == sqliteErrorEarly { throw DatabaseError(resultCode: .SQLITE_CORRUPT, message: "a damaged page") }
                try txn.put(todo, id: .string("r\(i)"), body: ["title": "ok"])
                if i == refusedLate {
                    // Valid first write, then an invalid one: the whole job must vanish.
                    try txn.put(todo, id: .string("r\(i)-extra"), body: ["title": 10])
                }
            }
        }
    }

    @Test func aReplayableJobThatFailsBeforeWritingIsLeftOutWithoutARerun() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")
        let runs = (0..<21).map { _ in SharedCounter() }

        let results = try await replayableBatch(store, todo, count: 21, refusedEarly: 5, refusedLate: nil, runs: runs)
        for (i, result) in results.enumerated() {
            if i == 5 {
                #expect(throws: StoreError.self) { try result.get() }
                #expect(try await store.get(todo, .string("r5")) == nil)
            } else {
                #expect(throws: Never.self) { try result.get() }
                #expect(try await store.get(todo, .string("r\(i)")) != nil)
            }
            // The batch ran once, without savepoints: a job that changed nothing needs no undoing.
            #expect(runs[i].current == 1, "job \(i) ran \(runs[i].current) times")
        }
        #expect(try await store.changes(after: 0).count == 21, "the gate's write and the 20 good ones")
        #expect(store.writeStatistics().values.map(\.replays).reduce(0, +) == 0)
    }

    @Test func aReplayableJobThatFailsInSQLiteMakesItsBatchRunAgainInSavepoints() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")
        let runs = (0..<21).map { _ in SharedCounter() }

        // An SQLite error may leave half a statement behind even when no row was counted as changed.
        let results = try await replayableBatch(store, todo, count: 21, refusedEarly: nil, refusedLate: nil, runs: runs, sqliteErrorEarly: 7)
        for (i, result) in results.enumerated() {
            if i == 7 {
                // The store reports SQLite's failures as its own (`StoreError.classify`).
                #expect(throws: StoreError.self) { try result.get() }
            } else {
                #expect(throws: Never.self) { try result.get() }
                #expect(try await store.get(todo, .string("r\(i)")) != nil)
            }
        }
        #expect(runs[7].current == 2)
        #expect(store.writeStatistics().values.map(\.replays).reduce(0, +) >= 1)
        #expect(store.writeStatistics().values.map(\.savepointWrites).reduce(0, +) >= 2, "the rerun gave each write a savepoint")
    }

    @Test func aReplayableJobThatFailsAfterWritingIsRolledBackAloneByARerunInSavepoints() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")
        let runs = (0..<21).map { _ in SharedCounter() }

        let results = try await replayableBatch(store, todo, count: 21, refusedEarly: 5, refusedLate: 10, runs: runs)
        for (i, result) in results.enumerated() {
            if i == 5 || i == 10 {
                #expect(throws: StoreError.self) { try result.get() }
                #expect(try await store.get(todo, .string("r\(i)")) == nil)
                #expect(try await store.get(todo, .string("r\(i)-extra")) == nil)
            } else {
                #expect(throws: Never.self) { try result.get() }
                #expect(try await store.get(todo, .string("r\(i)")) != nil)
            }
        }
        // Job 10 had changed rows when it threw: the transaction was rolled back and its batch ran
        // again, each job in a savepoint. Jobs that had run before it in the batch ran twice.
        #expect(runs[10].current == 2)
        #expect(runs.allSatisfy { (1...2).contains($0.current) }, "\(runs.map(\.current))")
        #expect(store.writeStatistics().values.map(\.replays).reduce(0, +) >= 1)
        let log = try await store.changes(after: 0)
        #expect(log.count == 20, "the gate's write and the 19 good ones, each once")
        #expect(Set(log.map(\.id)).count == 20)
    }

    @Test func concurrentlyWrittenDataSurvivesReopen() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let store = try openStore(directory)
        let todo = try store.layout("Todo")
        let results = try await concurrentWrites(store, todo, count: 20) { i in
            try await store.put(todo, .string("r\(i)"), ["title": "x"])
        }
        store.close()
        #expect(results.allSatisfy { (try? $0.get()) != nil })

        let reopened = try openStore(directory)
        defer { reopened.close() }
        #expect(try await reopened.changes(after: 0).count == 21)
    }
}
