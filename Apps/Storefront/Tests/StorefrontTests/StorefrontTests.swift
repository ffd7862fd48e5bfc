import AsyncHTTPClient
import Foundation
import Microlith
import NIOCore
import NIOHTTP1
import Storefront
import Testing

/// A storefront started for real (its HTTP server on a free loopback port) and a client.
final class RunningShop: Sendable {
    let server: MicrolithServer
    let services: [ChildProcess]
    let port: Int
    let serving: Task<Void, any Error>
    let data: String

    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    init(_ topology: Topology) async throws {
        data = NSTemporaryDirectory() + "storefront-tests-\(UUID().uuidString)"
        var options = Storefront.Options(appDirectory: try #require(Storefront.bundledAppDirectory()))
        options.topology = topology
        options.port = 0
        options.dataDirectory = data
        options.logLevel = "error"
        let binary = Self.packageRoot.appendingPathComponent(".build/debug/storefront").path
        options.serviceExecutable = binary
        (server, services) = try await Storefront.start(options)
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let server = self.server
        serving = Task { try await server.run { channel in continuation.yield(channel.localAddress?.port ?? 0) } }
        var iterator = ports.makeAsyncIterator()
        port = await iterator.next() ?? 0
    }

    func stop() async {
        serving.cancel()
        _ = await serving.result
        Storefront.stop(services)
        try? FileManager.default.removeItem(atPath: data)
    }

    struct Answer {
        var status: Int
        var headers: [String: String]
        var body: String
        var json: JSONValue? { try? JSONParser.parse(body) }
    }

    func request(_ method: HTTPMethod = .GET, _ path: String, json: String? = nil, headers: [String: String] = [:]) async throws -> Answer {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = method
        for (k, v) in headers { request.headers.add(name: k, value: v) }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: json))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 10 << 20)
        var fields: [String: String] = [:]
        for h in response.headers { fields[h.name.lowercased()] = h.value }
        return Answer(status: Int(response.status.code), headers: fields, body: String(buffer: body))
    }
}

@Suite(.serialized) struct StorefrontTests {
    let generator = CatalogGenerator()

    func withShop(_ topology: Topology = .microlith, _ body: (RunningShop) async throws -> Void) async throws {
        let shop = try await RunningShop(topology)
        do {
            try await body(shop)
        } catch {
            await shop.stop()
            throw error
        }
        await shop.stop()
    }

    @Test func aGivenStockChangesOnlyTheStockOfEveryProduct() {
        let stocked = CatalogGenerator(stock: 7_000)
        var levels = Set<Int>()
        for index in [0, 1, 2, 41, 500, 1012] {
            let own = generator.product(index)
            let given = stocked.product(index)
            levels.insert(own.stock.quantity)
            #expect(given.stock.id == own.product.id && given.stock.quantity == 7_000)
            #expect(given.product == own.product)
            #expect(given.price == own.price)
            #expect(given.reviews == own.reviews)
        }
        #expect(levels.allSatisfy { (0...120).contains($0) } && levels.count > 1)
        #expect(CatalogGenerator(stock: -1).stock == 0)
    }

    @Test func pagesShowTheRightProductPriceAndStock() async throws {
        try await withShop { shop in
            let p = generator.product(41)
            let json = try await shop.request(.GET, "/api/p/\(p.product.id)")
            #expect(json.status == 200)
            let o = try #require(json.json?.objectValue)
            #expect(o["product"]?.objectValue?["name"] == .string(p.product.name))
            #expect(o["product"]?.objectValue?["priceCents"] == .int(Int64(p.price.cents)))
            #expect(o["product"]?.objectValue?["stock"] == .int(Int64(p.stock.quantity)))
            #expect(o["reviews"]?.arrayValue?.count == p.reviews.count)
            #expect(o["related"]?.arrayValue?.count == CatalogModule.relatedCount)
            let html = try await shop.request(.GET, "/p/\(p.product.id)")
            #expect(html.status == 200)
            #expect(html.headers["content-type"]?.hasPrefix("text/html") == true)
            #expect(html.body.contains("<h1>\(p.product.name)</h1>"))
            let cents = p.price.cents
            #expect(html.body.contains("$\(cents / 100).\(String(format: "%02d", cents % 100))"))
            let home = try await shop.request(.GET, "/")
            #expect(home.body.contains("Kitchen") && home.body.contains("/p/p000001"))
            #expect(try await shop.request(.GET, "/p/nope").status == 404)
            #expect(try await shop.request(.GET, "/api/p/nope").status == 404)
        }
    }

    @Test func listingsSortAndPaginate() async throws {
        try await withShop { shop in
            let page1 = try #require(try await shop.request(.GET, "/api/c/c8?sort=price").json?.objectValue)
            #expect(page1["total"] == 265)
            #expect(page1["pages"] == .int(Int64((265 + 23) / 24)))
            let prices =
                page1["products"]?.arrayValue?.compactMap { $0.objectValue?["priceCents"] }.compactMap { v -> Int64? in
                    if case .int(let n) = v { return n }
                    return nil
                } ?? []
            #expect(prices.count == 24)
            #expect(prices == prices.sorted())
            let last = try #require(try await shop.request(.GET, "/api/c/c8?sort=price&page=12").json?.objectValue)
            #expect(last["products"]?.arrayValue?.count == 265 - 11 * 24)
            #expect(try await shop.request(.GET, "/api/c/c8?page=13").status == 404)
            #expect(try await shop.request(.GET, "/api/c/c8?sort=colour").status == 400)
            #expect(try await shop.request(.GET, "/api/c/c8?page=0").status == 400)
            let html = try await shop.request(.GET, "/c/c8?sort=-name&page=2")
            #expect(html.status == 200 && html.body.contains("page 2 of 12"))
        }
    }

    @Test func nameListingsPageThroughTheWholeCategoryInOrder() async throws {
        try await withShop { shop in
            let expected = (0..<generator.productCount).map { generator.product($0).product }.filter { $0.categoryId == "c8" }.map(\.name).sorted()
            var ascending: [String] = []
            var descending: [String] = []
            for page in 1...12 {
                for (sort, into) in [("name", 0), ("-name", 1)] {
                    let body = try #require(try await shop.request(.GET, "/api/c/c8?sort=\(sort)&page=\(page)").json?.objectValue)
                    #expect(body["total"] == 265 && body["pages"] == 12 && body["page"] == .int(Int64(page)))
                    let names = body["products"]?.arrayValue?.compactMap { $0.objectValue?["name"]?.stringValue } ?? []
                    #expect(names.count == (page < 12 ? 24 : 265 - 11 * 24))
                    if into == 0 { ascending += names } else { descending += names }
                }
            }
            #expect(ascending == expected, "every product of the category once, by name")
            #expect(descending == expected.reversed())
            #expect(try await shop.request(.GET, "/api/c/c8?sort=-name&page=13").status == 404)
            for sort in ["name", "price"] {
                for page in [Int.max, Int.max / 24, Int.max / 48 + 1, 1 << 40] {
                    #expect(try await shop.request(.GET, "/api/c/c8?sort=\(sort)&page=\(page)").status == 404, "page \(page)")
                }
                #expect(try await shop.request(.GET, "/api/c/c8?sort=\(sort)&page=99999999999999999999").status == 400)
            }
            #expect(try await shop.request(.GET, "/api/c/nope?sort=name").status == 404)
        }
    }

    @Test func checkoutDecrementsStockAndRefusesOversell() async throws {
        try await withShop { shop in
            let p = generator.product(7)
            let id = p.product.id
            let stock = p.stock.quantity
            let tooMany = try await shop.request(.POST, "/api/checkout", json: #"{"items":[{"productId":"\#(id)","quantity":\#(stock + 1)}]}"#)
            #expect(tooMany.status == 409)
            #expect(tooMany.body.contains("only \(stock) of"))
            let order = try await shop.request(.POST, "/api/checkout", json: #"{"items":[{"productId":"\#(id)","quantity":1}]}"#)
            #expect(order.status == 201)
            #expect(order.json?.objectValue?["totalCents"] == .int(Int64(p.price.cents)))
            let after = try await shop.request(.GET, "/api/p/\(id)")
            #expect(after.json?.objectValue?["product"]?.objectValue?["stock"] == .int(Int64(stock - 1)))
            #expect(try await shop.request(.POST, "/api/checkout", json: #"{"items":[]}"#).status == 400)
            #expect(try await shop.request(.POST, "/api/checkout", json: #"{"items":[{"productId":"nope","quantity":1}]}"#).status == 404)
            #expect(try await shop.request(.POST, "/api/checkout", json: "not json").status == 400)
            let form = try await shop.request(.GET, "/cart?add=\(id)&quantity=2")
            #expect(form.body.contains(p.product.name))
            #expect(form.headers["set-cookie"]?.hasPrefix("cart=") == true)
        }
    }

    @Test func aPriceChangeShowsOnTheNextRequest() async throws {
        try await withShop { shop in
            let id = "p000003"
            _ = try await shop.request(.GET, "/p/\(id)")
            let cached = try await shop.request(.GET, "/p/\(id)")
            #expect(cached.headers["x-cache"] == "hit")
            // Only an admin changes prices (roles.yaml): a shopper is asked to sign in.
            let anonymous = try await shop.request(.PATCH, "/Price/\(id)", json: #"{"cents":1}"#)
            #expect(anonymous.status == 401)
            try await shop.server.authenticator.users.add("admin", password: "test-admin", roles: ["admin"])
            let admin = ["Authorization": "Basic " + Data("admin:test-admin".utf8).base64EncodedString()]
            let patch = try await shop.request(.PATCH, "/Price/\(id)", json: #"{"cents":25000}"#, headers: admin)
            #expect(patch.status == 200)
            let fresh = try await shop.request(.GET, "/p/\(id)")
            #expect(fresh.headers["x-cache"] == "miss")
            #expect(fresh.body.contains("$250.00"))
            // A page carries the browser's page headers, kept (answered ahead of the router) or not.
            for page in [cached, fresh] {
                #expect(page.headers["x-frame-options"] == "DENY")
                #expect(page.headers["x-content-type-options"] == "nosniff")
                #expect(page.headers["content-security-policy"]?.contains("frame-ancestors 'none'") == true)
                #expect(page.headers["referrer-policy"] == "strict-origin-when-cross-origin")
            }
            #expect(try await shop.request(.GET, "/api/p/\(id)").headers["x-frame-options"] == nil, "JSON is no page")
            // The listing that shows it, too: now the dearest product of its category.
            let listing = try await shop.request(.GET, "/api/c/c1?sort=-price")
            let first = listing.json?.objectValue?["products"]?.arrayValue?.first?.objectValue
            #expect(first?["id"] == .string(id))
            #expect(first?["priceCents"] == 25000)
        }
    }

    @Test func aCheckoutLeavesPagesKeptAndTheirStockCurrent() async throws {
        try await withShop { shop in
            let p = generator.product(9)
            let id = p.product.id
            let stock = p.stock.quantity
            for path in ["/p/\(id)", "/api/p/\(id)", "/c/\(p.product.categoryId)"] { _ = try await shop.request(.GET, path) }
            let page = try await shop.request(.GET, "/p/\(id)")
            #expect(page.headers["x-cache"] == "hit")
            #expect(page.body.contains("<p class=\"in\">\(stock) in stock</p>"))
            #expect(!page.body.contains("\u{E000}"), "no slot marker reaches a client")
            let order = try await shop.request(.POST, "/api/checkout", json: #"{"items":[{"productId":"\#(id)","quantity":2}]}"#)
            #expect(order.status == 201)
            let after = try await shop.request(.GET, "/p/\(id)")
            #expect(after.headers["x-cache"] == "hit", "a checkout does not drop the page")
            #expect(after.body.contains("<p class=\"in\">\(stock - 2) in stock</p>"))
            let json = try await shop.request(.GET, "/api/p/\(id)")
            #expect(json.headers["x-cache"] == "hit")
            #expect(json.json?.objectValue?["product"]?.objectValue?["stock"] == .int(Int64(stock - 2)))
            #expect(json.json?.objectValue?["product"]?.objectValue?["inStock"] == true)
            // The cache counters are for a super user (the storefront's admin role is one).
            #expect(try await shop.request(.GET, "/_cache").status == 401)
            try await shop.server.authenticator.users.add("ops", password: "test-ops", roles: ["admin"])
            let ops = ["Authorization": "Basic " + Data("ops:test-ops".utf8).base64EncodedString()]
            let counters = try #require(try await shop.request(.GET, "/_cache", headers: ops).json?.objectValue)
            #expect(counters["invalidations"] == 0)
            if case .int(let hits)? = counters["hits"] { #expect(hits >= 3) } else { Issue.record("no hits counter: \(counters)") }
        }
    }

    @Test func bothTopologiesAnswerTheSame() async throws {
        let paths = ["/api/home", "/api/c/c3?page=2&sort=-price", "/api/c/c8?sort=name", "/api/p/p000500", "/api/p/p001013", "/api/products"]
        var answers: [Topology: [String]] = [:]
        for topology in Topology.allCases {
            try await withShop(topology) { shop in
                var bodies: [String] = []
                for path in paths {
                    let a = try await shop.request(.GET, path)
                    #expect(a.status == 200, "\(topology) \(path): \(a.body)")
                    bodies.append(a.body)
                }
                let bad = try await shop.request(.POST, "/api/checkout", json: #"{"items":[{"productId":"p000001","quantity":100000}]}"#)
                bodies.append("\(bad.status)")
                answers[topology] = bodies
            }
        }
        #expect(answers[.microlith] == answers[.services])
    }
}
