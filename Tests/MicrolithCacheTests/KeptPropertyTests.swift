import MicrolithCache
import MicrolithJSON
import MicrolithStore
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
}
