import MicrolithJSON
import MicrolithStore
import Testing

private func isPresent(_ entry: CacheEntry?) -> Bool {
    if case .present = entry { return true }
    return false
}

private func isAbsent(_ entry: CacheEntry?) -> Bool {
    if case .absent = entry { return true }
    return false
}

/// The cost the cache charges for an `.absent` entry (found by measuring, not assumed).
private func absentCost() -> Int {
    let cache = RecordCache(limitBytes: 1 << 20)
    cache.apply([(table: 0, id: .int(0), entry: .absent)])
    return cache.statistics.bytes
}

@Suite("RecordCache")
struct RecordCacheTests {
    @Test func appliedChangesAreFoundAndCounted() {
        let cache = RecordCache(limitBytes: 1 << 20)
        #expect(cache.lookup(table: 0, id: .int(1)) == nil)
        cache.apply([(table: 0, id: .int(1), entry: .absent)])
        #expect(isAbsent(cache.lookup(table: 0, id: .int(1))))
        #expect(cache.lookup(table: 1, id: .int(1)) == nil, "tables are separate")
        let stats = cache.statistics
        #expect(stats.entries == 1)
        #expect(stats.hits == 1)
        #expect(stats.misses == 2)
        #expect(stats.bytes > 0)
    }

    @Test func memoryBoundIsRespected() {
        let cost = absentCost()
        let limit = cost * 100
        let cache = RecordCache(limitBytes: limit)
        for i in 0..<1000 {
            cache.apply([(table: 0, id: .int(Int64(i)), entry: .absent)])
            let stats = cache.statistics
            #expect(stats.bytes <= limit + cost, "after \(i + 1) entries: \(stats.bytes) bytes")
            #expect(stats.bytes == stats.entries * cost)
        }
        #expect(cache.statistics.entries < 1000)
        #expect(cache.statistics.entries >= 50, "about half the budget is always kept")
        #expect(cache.lookup(table: 0, id: .int(0)) == nil, "the oldest entries were evicted")
        #expect(isAbsent(cache.lookup(table: 0, id: .int(999))), "the newest entry is kept")
    }

    @Test func recentlyUsedEntriesSurviveEviction() {
        let cost = absentCost()
        // Half the budget is 50 entries: the young generation turns old at its 51st entry.
        let cache = RecordCache(limitBytes: cost * 100)
        let a = RecordID.string("a")
        cache.apply([(table: 0, id: a, entry: .absent)])
        for i in 0..<50 { cache.apply([(table: 0, id: .string("b\(i)"), entry: .absent)]) }
        // `a` is now in the old generation; a hit brings it back to the young one.
        #expect(isAbsent(cache.lookup(table: 0, id: a)))
        for i in 0..<51 { cache.apply([(table: 0, id: .string("c\(i)"), entry: .absent)]) }
        #expect(isAbsent(cache.lookup(table: 0, id: a)), "a used entry outlives two generations")
        #expect(cache.lookup(table: 0, id: .string("b0")) == nil, "unused entries of the dropped generation are gone")
        #expect(isAbsent(cache.lookup(table: 0, id: .string("c50"))))
    }

    @Test func aCommitToAnotherKeyDoesNotStopAFill() {
        let cache = RecordCache(limitBytes: 1 << 20)
        let before = cache.readSequence()
        cache.apply([(table: 0, id: .int(2), entry: .absent)])
        cache.fill(table: 0, id: .int(1), entry: .absent, readSequence: before)
        #expect(isAbsent(cache.lookup(table: 0, id: .int(1))), "under steady writes elsewhere, reads still fill the cache")
    }

    @Test func fillIsRefusedWhenEntriesWereDroppedSinceTheReadBegan() {
        // A budget of a few entries: the young generation rolls over quickly.
        let cache = RecordCache(limitBytes: 4 * absentCost())
        let before = cache.readSequence()
        cache.apply([(table: 0, id: .int(1), entry: .absent)])
        for i in 10..<20 { cache.apply([(table: 0, id: .int(Int64(i)), entry: .absent)]) }
        #expect(cache.lookup(table: 0, id: .int(1)) == nil, "the commit's entry was dropped with its generation")
        cache.fill(table: 0, id: .int(1), entry: .absent, readSequence: before)
        #expect(cache.lookup(table: 0, id: .int(1)) == nil, "a read older than the drop cannot put back what the commit replaced")
    }

    @Test func fillNeverReplacesWhatACommitPut() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")
        let record = try await store.put(todo, .string("t1"), ["title": "a"])

        let cache = RecordCache(limitBytes: 1 << 20)
        cache.apply([(table: 0, id: .string("t1"), entry: .absent)])
        cache.fill(table: 0, id: .string("t1"), entry: .present(record), readSequence: cache.readSequence())
        #expect(isAbsent(cache.lookup(table: 0, id: .string("t1"))))
    }

    @Test func aZeroBudgetCachesNothing() {
        let cache = RecordCache(limitBytes: 0)
        cache.apply([(table: 0, id: .int(1), entry: .absent)])
        cache.fill(table: 0, id: .int(2), entry: .absent, readSequence: cache.readSequence())
        #expect(cache.lookup(table: 0, id: .int(1)) == nil)
        #expect(cache.lookup(table: 0, id: .int(2)) == nil)
        #expect(cache.statistics.entries == 0)
        #expect(cache.statistics.bytes == 0)
    }

    @Test func invalidatingATableDropsOnlyItsEntries() {
        let cache = RecordCache(limitBytes: 1 << 20)
        cache.apply([(table: 0, id: .int(1), entry: .absent), (table: 1, id: .int(1), entry: .absent)])
        let before = cache.readSequence()
        cache.invalidate(table: 0)
        #expect(cache.lookup(table: 0, id: .int(1)) == nil)
        #expect(isAbsent(cache.lookup(table: 1, id: .int(1))))
        #expect(cache.statistics.entries == 1)
        #expect(cache.statistics.bytes == absentCost())
        cache.fill(table: 0, id: .int(1), entry: .absent, readSequence: before)
        #expect(cache.lookup(table: 0, id: .int(1)) == nil, "a read that began before the invalidation is refused")
    }

    @Test func replacingAnEntryDoesNotLeakBytes() {
        let cache = RecordCache(limitBytes: 1 << 20)
        for _ in 0..<10 { cache.apply([(table: 0, id: .int(1), entry: .absent)]) }
        #expect(cache.statistics.entries == 1)
        #expect(cache.statistics.bytes == absentCost())
    }
}

@Suite("Store: record cache")
struct StoreCacheTests {
    @Test func aWriteIsCachedAndReadsHitTheCache() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")

        let written = try await store.put(todo, .string("t1"), ["title": "a"])
        guard case .present(let cached) = store.cachedGet(todo, .string("t1")) else {
            Issue.record("the committed record is not in the cache")
            return
        }
        #expect(cached.version == written.version)
        #expect(cached.record == written.record)

        let hits = store.cache.statistics.hits
        #expect(try await store.get(todo, .string("t1"))?.version == written.version)
        #expect(store.cache.statistics.hits == hits + 1)
    }

    @Test func aDeleteLeavesAnAbsentEntry() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")
        try await store.put(todo, .string("t1"), ["title": "a"])
        try await store.write { txn in _ = try txn.delete(todo, id: .string("t1")) }

        #expect(isAbsent(store.cachedGet(todo, .string("t1"))))
        #expect(try await store.get(todo, .string("t1")) == nil)
    }

    @Test func readsFillTheCacheAfterAReopen() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let first = try openStore(directory)
        let written = try await first.put(try first.layout("Todo"), .string("t1"), ["title": "a"])
        first.close()

        let store = try openStore(directory)
        defer { store.close() }
        let todo = try store.layout("Todo")
        #expect(store.cachedGet(todo, .string("t1")) == nil)
        #expect(try await store.get(todo, .string("t1"))?.version == written.version)
        guard case .present(let cached) = store.cachedGet(todo, .string("t1")) else {
            Issue.record("a read did not fill the cache")
            return
        }
        #expect(cached.version == written.version)

        #expect(try await store.get(todo, .string("missing")) == nil)
        #expect(isAbsent(store.cachedGet(todo, .string("missing"))), "misses are cached too")
    }

    @Test func aReplacementUpdatesTheCachedVersion() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")
        #expect(try await store.get(todo, .string("t1")) == nil)
        #expect(isAbsent(store.cachedGet(todo, .string("t1"))))

        try await store.put(todo, .string("t1"), ["title": "a"])
        let second = try await store.put(todo, .string("t1"), ["title": "b"])
        #expect(try await store.get(todo, .string("t1"))?.record["title"] == "b")
        guard case .present(let cached) = store.cachedGet(todo, .string("t1")) else {
            Issue.record("the replaced record is not cached")
            return
        }
        #expect(cached.version == second.version)
    }

    @Test func aStoreWithoutCacheStillReads() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let store = try openStore(directory, cacheBytes: 0)
        defer { store.close() }
        let todo = try store.layout("Todo")
        try await store.put(todo, .string("t1"), ["title": "a"])
        #expect(store.cachedGet(todo, .string("t1")) == nil)
        #expect(try await store.get(todo, .string("t1"))?.record["title"] == "a")
        #expect(store.cachedGet(todo, .string("t1")) == nil)
        #expect(store.cache.statistics.entries == 0)
    }

    @Test func theCacheStaysWithinItsBudgetUnderManyWrites() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        let budget = 16 * 1024
        let store = try openStore(directory, cacheBytes: budget)
        defer { store.close() }
        let todo = try store.layout("Todo")
        var largest = 0
        for i in 0..<300 {
            try await store.put(todo, .string("t\(i)"), ["title": .string(String(repeating: "x", count: 40))])
            largest = max(largest, store.cache.statistics.bytes)
        }
        // One entry costs well under 1 KiB here; the cache may exceed its budget by one entry at most.
        #expect(largest <= budget + 1024)
        #expect(store.cache.statistics.entries < 300)
        #expect(try await store.get(todo, .string("t0"))?.record["title"] != nil, "evicted records are read from SQLite")
    }
}
