import MicrolithCache
import MicrolithJSON
import MicrolithQuery
import MicrolithStore
import MicrolithTestSupport
import NIOCore
import Testing

@Suite("Kept responses: read sets")
struct KeptResponsesTests {
    @Test func aCommitDropsExactlyTheResponsesThatReadTheRecord() async throws {
        let shop = try Shop()
        defer { shop.close() }
        try await shop.put(shop.products, "p1", ["name": "one"])
        try await shop.put(shop.products, "p2", ["name": "two"])
        let (text, outcome) = try await shop.render("/p/p1") { try await shop.name("p1") }
        #expect(text == "one" && outcome == .kept)
        try await shop.render("/p/p2") { try await shop.name("p2") }
        try await shop.render("/p/p9") { try await shop.name("p9") }
        #expect(shop.hit("/p/p1") == "one")
        #expect(shop.hit("/p/p9") == "-")

        try await shop.put(shop.products, "p2", ["name": "deux"])
        #expect(shop.hit("/p/p1") == "one", "another record's commit leaves the page")
        #expect(shop.hit("/p/p2") == nil)
        try await shop.put(shop.products, "p9", ["name": "nine"])
        #expect(shop.hit("/p/p9") == nil, "reading an absent record depends on it too")
        try await shop.delete(shop.products, "p1")
        #expect(shop.hit("/p/p1") == nil)
        #expect(shop.kept.statistics.invalidations == 3)
    }

    @Test func aCommitWhileTheHandlerRunsRefusesTheResponse() async throws {
        let shop = try Shop()
        defer { shop.close() }
        try await shop.put(shop.products, "p1", ["name": "one"])
        try await shop.put(shop.products, "p2", ["name": "two"])
        let (_, touched) = try await shop.render("/p/p1") {
            let name = try await shop.name("p1")
            try await shop.put(shop.products, "p1", ["name": "uno"])
            return name
        }
        #expect(touched == .stale)
        #expect(shop.hit("/p/p1") == nil)
        let (_, untouched) = try await shop.render("/p/p1") {
            let name = try await shop.name("p1")
            try await shop.put(shop.products, "p2", ["name": "dos"])
            return name
        }
        #expect(untouched == .kept, "a commit to something else does not matter")
        #expect(shop.kept.statistics.refusedStale == 1)
    }

    @Test func queriesAreDroppedByRecordsEnteringOrLeavingTheirFilter() async throws {
        let shop = try Shop()
        defer { shop.close() }
        for (id, category, position) in [("a", "c1", 1), ("b", "c1", 2), ("c", "c2", 1)] {
            try await shop.put(shop.products, id, ["category": .string(category), "position": .int(Int64(position))])
        }
        let listing = "category=c1&sort(+position)"
        let ranged = "position=gt=5"
        try await shop.render("/c1") { try await shop.query(shop.products, listing).joined(separator: ",") }
        try await shop.render("/late") { try await shop.query(shop.products, ranged).joined(separator: ",") }
        #expect(shop.hit("/c1") == "a,b")
        #expect(shop.hit("/late") == "")

        try await shop.put(shop.products, "c", ["category": "c2", "position": 2])
        #expect(shop.hit("/c1") == "a,b", "a record outside the filter before and after leaves it")
        #expect(shop.hit("/late") == "")

        try await shop.put(shop.products, "d", ["category": "c1", "position": 3])
        #expect(shop.hit("/c1") == nil, "a record entering the filter drops it")
        #expect(shop.hit("/late") == "")
        try await shop.render("/c1") { try await shop.query(shop.products, listing).joined(separator: ",") }
        #expect(shop.hit("/c1") == "a,b,d")

        try await shop.put(shop.products, "a", ["category": "c2", "position": 9])
        #expect(shop.hit("/c1") == nil, "a record leaving the filter drops it")
        #expect(shop.hit("/late") == nil, "an unbucketed range filter is tested too")
    }

    @Test func arrayAttributesAndNumbersFindTheirBuckets() async throws {
        let shop = try Shop()
        defer { shop.close() }
        try await shop.put(shop.products, "a", ["tags": ["red", "big"], "position": 5])
        try await shop.render("/red") { try await shop.query(shop.products, "tags=red").joined(separator: ",") }
        try await shop.render("/five") { try await shop.query(shop.products, "position=5").joined(separator: ",") }
        try await shop.put(shop.products, "b", ["tags": ["blue"], "position": 6])
        #expect(shop.hit("/red") == "a")
        #expect(shop.hit("/five") == "a")
        try await shop.put(shop.products, "c", ["tags": ["small", "red"]])
        #expect(shop.hit("/red") == nil, "an element of an array matches the equality")
        #expect(shop.hit("/five") == "a")
        try await shop.put(shop.products, "d", ["position": 5.0])
        #expect(shop.hit("/five") == nil, "5.0 equals 5")
    }

    @Test func whatCannotBeFollowedIsNotKept() async throws {
        let shop = try Shop()
        defer { shop.close() }
        let sessions = shop.store.table(name: "Session")!
        let (_, expiring) = try await shop.render("/s") {
            _ = try await shop.store.get(sessions, .string("x"))
            return "s"
        }
        guard case .notKeepable = expiring else { Issue.record("kept a read of an expiring table: \(expiring)"); return }
        let (_, remote) = try await shop.render("/r") {
            ReadObservation.observer?.untracked("a call to another process")
            return "r"
        }
        #expect(remote == .notKeepable("a call to another process"))
        #expect(shop.hit("/s") == nil && shop.hit("/r") == nil)
    }

    @Test func theBudgetEvictsTheLeastRecentlyUsed() async throws {
        let shop = try Shop(limitBytes: 64 << 10)
        defer { shop.close() }
        let page = String(repeating: "x", count: 4000)
        try await shop.render("/first") { page }
        for i in 0..<40 {
            try await shop.render("/p\(i)") { page }
            _ = shop.hit("/first")  // kept in use
        }
        let s = shop.kept.statistics
        #expect(s.bytes <= 64 << 10)
        #expect(s.entries < 41 && s.entries > 5)
        #expect(s.evictions == UInt64(41 - s.entries))
        #expect(shop.hit("/first") != nil, "the entry in use survives")
        #expect(shop.hit("/p0") == nil, "the oldest unused one went first")
        #expect(shop.hit("/p39") != nil)
    }

    @Test func liveSlotsFollowTheirRecordWithoutDroppingThePage() async throws {
        let shop = try Shop()
        defer { shop.close() }
        try await shop.put(shop.products, "p1", ["name": "one"])
        try await shop.put(shop.reviews, "r1", ["productId": "p1", "rating": 3])
        let reviews = shop.reviews
        let (text, outcome) = try await shop.render("/p/p1") {
            let name = try await shop.name("p1")
            guard let recording = ReadObservation.observer as? KeptRecording else { return "no recording" }
            _ = try await ReadObservation.$observer.withValue(nil) { try await shop.store.get(reviews, .string("r1")) }
            let rating = recording.addSlot(
                LiveSlot(table: reviews, id: .string("r1")) { record in
                    if case .int(let n)? = record?["rating"] { return "\(n)" }
                    return "none"
                })
            return "\(name) rated \(rating)"
        }
        #expect(outcome == .kept)
        #expect(text == "one rated 3")
        #expect(shop.hit("/p/p1") == "one rated 3")
        try await shop.put(shop.reviews, "r1", ["productId": "p1", "rating": 5])
        #expect(shop.hit("/p/p1") == "one rated 5", "the slot shows the commit; the page stays")
        try await shop.delete(shop.reviews, "r1")
        #expect(shop.hit("/p/p1") == "one rated none")
        #expect(shop.kept.statistics.invalidations == 0)
        try await shop.put(shop.products, "p1", ["name": "uno"])
        #expect(shop.hit("/p/p1") == nil, "what the page read still drops it")
    }

    @Test func aPageWithSlotsIsServedAgainWithoutLookupsUntilASlotsRecordIsCommitted() async throws {
        let shop = try Shop()
        defer { shop.close() }
        try await shop.put(shop.reviews, "r1", ["productId": "p1", "rating": 3])
        let recording = shop.kept.begin()
        let marker = recording.addSlot(
            LiveSlot(table: shop.reviews, id: .string("r1")) { record in
                if case .int(let n)? = record?["rating"] { return "\(n)" }
                return "none"
            })
        let response = CachedResponse(headers: [("Content-Type", "text/plain")], body: ByteBuffer(string: "rated \(marker)"))
        #expect(shop.kept.keep(response, for: "/r1", recording: recording) == .kept)
        #expect(shop.hit("/r1") == "rated 3")
        let lookups = shop.store.cache.statistics.hits
        #expect(shop.hit("/r1") == "rated 3")
        #expect(shop.store.cache.statistics.hits == lookups, "nothing committed: the body filled last is served again")

        // A record whose commit counter is not r1's (counters are shared by a few records).
        let cache = shop.store.cache
        let r1 = cache.changeCounter(table: shop.reviews.index, id: .string("r1"))
        let other = try #require((2...50).map { "r\($0)" }.first { cache.changeCounter(table: shop.reviews.index, id: .string($0)) != r1 })
        try await shop.put(shop.reviews, other, ["productId": "p2", "rating": 1])
        #expect(shop.hit("/r1") == "rated 3")
        #expect(shop.store.cache.statistics.hits == lookups, "a commit to another record leaves the body")

        try await shop.put(shop.reviews, "r1", ["productId": "p1", "rating": 4])
        #expect(shop.hit("/r1") == "rated 4")
        #expect(shop.store.cache.statistics.hits == lookups + 1, "a commit to the slot's record: it is looked up again")
        #expect(shop.hit("/r1") == "rated 4")
        #expect(shop.store.cache.statistics.hits == lookups + 1)
    }

    @Test func slotsOfRecordsThatExpireAreLookedUpAtEveryServing() async throws {
        let clock = ManualClock()
        let shop = try Shop(wallClock: { clock.read() })
        defer { shop.close() }
        let sessions = try #require(shop.store.table(name: "Session"))
        _ = try await shop.store.write { txn in try txn.put(sessions, id: .string("s1"), body: [:]) }
        let recording = shop.kept.begin()
        let marker = recording.addSlot(LiveSlot(table: sessions, id: .string("s1")) { $0 == nil ? "signed out" : "signed in" })
        let response = CachedResponse(headers: [("Content-Type", "text/plain")], body: ByteBuffer(string: "you are \(marker)"))
        #expect(shop.kept.keep(response, for: "/me", recording: recording) == .kept)
        #expect(shop.hit("/me") == "you are signed in")
        #expect(shop.hit("/me") == "you are signed in")
        clock.advance(seconds: 61)
        #expect(shop.hit("/me") == "you are signed out", "the session lapsed without a commit")
    }

    @Test func jsonSlotsReplaceTheirQuotes() async throws {
        let shop = try Shop()
        defer { shop.close() }
        try await shop.put(shop.products, "p1", ["position": 12])
        let slot = LiveSlot(table: shop.products, id: .string("p1")) { record in
            if case .int(let n)? = record?["position"] { return "\(n)" }
            return "null"
        }
        let recording = shop.kept.begin()
        let marker = recording.addSlot(slot)
        let body = ByteBuffer(string: "{\"stock\":\"\(marker)\",\"label\":\"only \(marker) left\"}")
        let response = CachedResponse(headers: [("Content-Type", "application/json")], body: body)
        #expect(shop.kept.keep(response, for: "/api/p1", recording: recording) == .kept)
        #expect(shop.hit("/api/p1") == #"{"stock":12,"label":"only 12 left"}"#)
    }
}
