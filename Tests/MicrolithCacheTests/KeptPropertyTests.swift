import MicrolithCache
import MicrolithJSON
import MicrolithStore
import NIOCore
import Synchronization
import Testing

/// Random writes interleaved with random page requests, some with a write landing while the
/// page is built: every page served from the cache must equal the page built afresh.
@Suite("Kept responses: never older than an acknowledged commit")
struct KeptPropertyTests {
    static let ids = (0..<12).map { "p\($0)" }
    static let categories = ["c0", "c1", "c2"]

    /// A page: its text from records and queries, as a handler would build it.
    static func page(_ target: String, _ shop: Shop) async throws -> String {
        let parts = target.split(separator: "/").map(String.init)
        switch parts[0] {
        case "p":
            let name = try await shop.name(parts[1])
            let reviews = try await shop.query(shop.reviews, "productId=\(parts[1])&sort(+id)")
            return "\(name)|\(reviews.joined(separator: ","))"
        case "c":
            return try await shop.query(shop.products, "category=\(parts[1])&sort(+position)&limit(3)").joined(separator: ",")
        default:
            return try await shop.query(shop.products, "position=gt=50").joined(separator: ",")
        }
    }

    static func randomWrite(_ shop: Shop, _ rng: inout some RandomNumberGenerator) async throws -> String {
        let id = ids.randomElement(using: &rng)!
        switch Int.random(in: 0..<10, using: &rng) {
        case 0..<5:
            let name = ["ant", "bee", "cat"].randomElement(using: &rng)!
            let category = categories.randomElement(using: &rng)!
            let position = Int64.random(in: 0..<100, using: &rng)
            try await shop.put(shop.products, id, ["name": .string(name), "category": .string(category), "position": .int(position)])
            return "put \(id) \(name) \(category) \(position)"
        case 5..<7:
            try await shop.delete(shop.products, id)
            return "delete \(id)"
        case 7..<9:
            let review = "r\(Int.random(in: 0..<6, using: &rng))"
            try await shop.put(shop.reviews, review, ["productId": .string(id), "rating": 4])
            return "review \(review) of \(id)"
        default:
            let review = "r\(Int.random(in: 0..<6, using: &rng))"
            try await shop.delete(shop.reviews, review)
            return "delete review \(review)"
        }
    }

    @Test func everyServedPageEqualsAFreshOne() async throws {
        let shop = try Shop()
        defer { shop.close() }
        var rng = SystemRandomNumberGenerator()
        let targets = Self.ids.map { "p/\($0)" } + Self.categories.map { "c/\($0)" } + ["top"]
        var log: [String] = []
        var hits = 0
        for step in 0..<1500 {
            if Bool.random(using: &rng) {
                log.append(try await Self.randomWrite(shop, &rng))
                continue
            }
            let target = targets.randomElement(using: &rng)!
            if let served = shop.hit(target) {
                hits += 1
                let fresh = try await Self.page(target, shop)
                #expect(served == fresh, "step \(step): \(target) served '\(served)', fresh '\(fresh)'; last writes: \(log.suffix(5))")
                if served != fresh { return }
                continue
            }
            let interfere = Int.random(in: 0..<4, using: &rng) == 0
            var during: [String] = []
            try await shop.render(target) {
                let first = try await Self.page(target, shop)
                if interfere {
                    var local = SystemRandomNumberGenerator()
                    during.append(try await Self.randomWrite(shop, &local))
                }
                return first
            }
            log += during
        }
        let s = shop.kept.statistics
        #expect(hits > 100, "the test should exercise hits, got \(hits)")
        #expect(s.refusedStale > 0, "and writes landing while a page is built, got \(s)")
        #expect(s.invalidations > 50)
    }

    /// Commits racing the serving of a page with live slots: a page served after a commit was
    /// acknowledged never shows a slot's record older than that commit, whichever way serving
    /// and committing interleave (a body filled from records read just before a commit must not
    /// be served again after it).
    @Test func aSlotIsNeverOlderThanAnAcknowledgedCommitWhileCommitsRace() async throws {
        let shop = try Shop()
        defer { shop.close() }
        let ids = (0..<4).map { "r\($0)" }
        for id in ids { try await shop.put(shop.reviews, id, ["productId": "p1", "rating": 0]) }
        let recording = shop.kept.begin()
        var text = ""
        for id in ids {
            let marker = recording.addSlot(
                LiveSlot(table: shop.reviews, id: .string(id)) { record in
                    if case .int(let n)? = record?["rating"] { return "\(n)" }
                    return "none"
                })
            text += "\(marker),"
        }
        let response = CachedResponse(headers: [("Content-Type", "text/plain")], body: ByteBuffer(string: text))
        #expect(shop.kept.keep(response, for: "/page", recording: recording) == .kept)

        let writes = 1500
        let race = Race(slots: ids.count)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for n in 1...writes {
                    let i = n % ids.count
                    try await shop.put(shop.reviews, ids[i], ["productId": "p1", "rating": .int(Int64(n))])
                    race.acknowledged.withLock { $0[i] = n }
                }
                race.done.store(true, ordering: .sequentiallyConsistent)
            }
            for _ in 0..<2 {
                group.addTask {
                    while !race.done.load(ordering: .sequentiallyConsistent) {
                        let before = race.acknowledged.withLock { $0 }
                        guard let page = shop.hit("/page") else {
                            race.violations.withLock { $0.append("the page was dropped by a commit to a slot's record") }
                            return
                        }
                        race.served.add(1, ordering: .relaxed)
                        let shown = page.split(separator: ",").map { Int($0) ?? -1 }
                        for (i, rating) in shown.enumerated() where rating < before[i] {
                            race.violations.withLock { $0.append("\(ids[i]) shown at \(rating) after \(before[i]) was acknowledged: '\(page)'") }
                        }
                        await Task.yield()
                    }
                }
            }
            try await group.waitForAll()
        }
        let found = race.violations.withLock { $0 }
        #expect(found.isEmpty, "\(found.count) stale pages, first: \(found.prefix(3))")
        let servedCount = race.served.load(ordering: .relaxed)
        #expect(servedCount > writes / 2, "the readers should race the writer, served \(servedCount)")
        let last = ids.indices.map { i in (1...writes).last { $0 % ids.count == i } ?? 0 }
        #expect(shop.hit("/page") == last.map { "\($0)," }.joined(), "once the writes stop, every slot shows its last commit")
    }
}

/// What the writer and the readers of the race test share.
private final class Race: Sendable {
    /// The last rating acknowledged per slot.
    let acknowledged: Mutex<[Int]>
    let done = Atomic<Bool>(false)
    let served = Atomic<Int>(0)
    let violations = Mutex<[String]>([])

    init(slots: Int) {
        acknowledged = Mutex([Int](repeating: 0, count: slots))
    }
}
