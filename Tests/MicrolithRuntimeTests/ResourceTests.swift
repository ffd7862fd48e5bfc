import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MicrolithJSON
import MicrolithJobs
import MicrolithModules
import MicrolithRuntime
import MicrolithStore
import MicrolithTables
import NIOCore
import Testing

let shopSchema = """
    type Product @table @export {
        id: ID @primaryKey
        name: String!
        slug: String
        price: Int
        stock: Int
    }
    type Sale @table @export {
        id: ID @primaryKey
        productId: String
        quantity: Int
    }
    """

struct Product: Codable, Sendable, Equatable {
    var id: String?
    var name: String
    var slug: String?
    var price: Int?
    var stock: Int?
}

struct Sale: Codable, Sendable, Equatable {
    var id: String
    var productId: String
    var quantity: Int
}

struct SaleRequest: Codable, Sendable {
    var productId: String
    var quantity: Int
}

enum Shop {
    static let products = TableRef<Product>("Product")
    static let sales = TableRef<Sale>("Sale")
    static let sell = Operation<SaleRequest, Sale>(module: "shop", name: "sell")
    static let receipt = Job<Sale>(module: "shop", name: "receipt")
}

/// Hooks on Product, a standalone stock resource, and an operation selling in one transaction.
struct ShopModule: Module {
    let name = "shop"

    func register(_ builder: inout ModuleBuilder) {
        builder.table(Shop.products) { hooks in
            hooks.write { product, write in
                guard (product.price ?? 0) >= 0 else { throw OperationError.badRequest("price must be ≥ 0, got \(product.price!)") }
                if let previous = write.previous, previous.name != product.name, write.request.headers["x-rename"] == nil {
                    throw OperationError.conflict("renaming needs the X-Rename header")
                }
                var p = product
                p.slug = product.name.lowercased().replacingOccurrences(of: " ", with: "-")
                return p
            }
            hooks.delete { product, _ in
                if (product.stock ?? 0) > 0 { throw OperationError.conflict("\(product.name) still has \(product.stock!) in stock") }
            }
            hooks.get { product, request in
                var p = product
                if request.headers["x-hide-stock"] != nil { p.stock = nil }
                return p
            }
            hooks.search { request in
                if request.query?.contains("price") == true && request.headers["x-staff"] == nil {
                    throw OperationError(status: 403, code: "forbidden", message: "only staff may search by price")
                }
            }
        }
        builder.resource("/stock/{id}") { r in
            r.get { call, context in
                let id = call.request.parameters["id"]!
                guard let p = try await context.get(Shop.products, RecordKey(id)) else { throw OperationError.notFound("no product \(id)") }
                return try .json(["id": id, "stock": "\(p.stock ?? 0)"])
            }
            r.post { call, context in
                let body = try call.decode([String: Int].self)
                guard let add = body["add"] else { throw OperationError.badRequest("send {\"add\": n}") }
                let id = call.request.parameters["id"]!
                let updated = try await context.write { txn in
                    try txn.update(Shop.products, RecordKey(id)) { $0.stock = ($0.stock ?? 0) + add }
                }
                guard let updated else { throw OperationError.notFound("no product \(id)") }
                return try .json(updated, status: 200)
            }
        }
        builder.handle(Shop.sell) { request, context in
            try await context.write { txn in
                guard var product = try txn.get(Shop.products, RecordKey(request.productId)) else {
                    throw OperationError.notFound("no product \(request.productId)")
                }
                let sale = try txn.insert(Shop.sales, Sale(id: UUID().uuidString, productId: request.productId, quantity: request.quantity))
                guard (product.stock ?? 0) >= request.quantity else {
                    throw OperationError.conflict("only \(product.stock ?? 0) of \(product.name) left")
                }
                product.stock = (product.stock ?? 0) - request.quantity
                try txn.put(Shop.products, product)
                try txn.enqueue(Shop.receipt, sale)
                return sale
            }
        }
        builder.job(Shop.receipt) { _, _ in }
    }
}

@Suite struct ResourceTests {
    func withShop(roles: [String]? = nil, _ body: @escaping @Sendable (MicrolithServer, any TestClientProtocol) async throws -> Void) async throws {
        let app = try TemporaryApp(["schema.graphql": shopSchema])
        defer { app.remove() }
        let server = try await MicrolithServer.start(appDirectory: app.path, modules: [ShopModule()], environment: adminEnvironment) { c in
            c.store.directory = app.file("data")
            c.logLevel = "error"
            c.roles = roles
            c.passwordIterations = 1_000
        }
        defer { server.store.close() }
        try await server.makeApplication().test(.router) { client in try await body(server, client) }
    }

    func json(_ buffer: ByteBuffer) throws -> JSONObject {
        try #require(try JSONParser.parse(String(buffer: buffer)).objectValue)
    }

    @Test func writeHooksComputeFieldsAndRefuse() async throws {
        try await withShop { _, client in
            let put = try await client.execute(
                uri: "/Product/p1", method: .put, body: ByteBuffer(string: #"{"name":"Blue Mug","price":5,"stock":2}"#))
            #expect(put.status == .created)
            #expect(try json(put.body)["slug"] == "blue-mug")
            let negative = try await client.execute(uri: "/Product/p1", method: .patch, body: ByteBuffer(string: #"{"price":-1}"#))
            #expect(negative.status == .badRequest)
            #expect(try json(negative.body)["code"] == "badRequest")
            #expect(String(buffer: negative.body).contains("price must be ≥ 0"))
            let rename = try await client.execute(uri: "/Product/p1", method: .patch, body: ByteBuffer(string: #"{"name":"Red Mug"}"#))
            #expect(rename.status == .conflict)
            let allowed = try await client.execute(
                uri: "/Product/p1", method: .patch, headers: [HTTPField.Name("X-Rename")!: "yes"], body: ByteBuffer(string: #"{"name":"Red Mug"}"#))
            #expect(allowed.status == .ok)
            #expect(try json(allowed.body)["slug"] == "red-mug")
            let posted = try await client.execute(uri: "/Product/", method: .post, body: ByteBuffer(string: #"{"name":"Big Pot"}"#))
            #expect(posted.status == .created)
            #expect(try json(posted.body)["slug"] == "big-pot")
            #expect(posted.headers[HTTPField.Name("X-Request-Id")!] != nil)
        }
    }

    @Test func deleteAndReadHooks() async throws {
        try await withShop { _, client in
            _ = try await client.execute(uri: "/Product/p1", method: .put, body: ByteBuffer(string: #"{"name":"Mug","stock":3}"#))
            let refused = try await client.execute(uri: "/Product/p1", method: .delete)
            #expect(refused.status == .conflict)
            #expect(String(buffer: refused.body).contains("still has 3 in stock"))
            let byQuery = try await client.execute(uri: "/Product/?name=Mug", method: .delete)
            #expect(byQuery.status == .conflict, "delete by query runs the hook for every record, atomically")
            let hidden = try await client.execute(uri: "/Product/p1", method: .get, headers: [HTTPField.Name("X-Hide-Stock")!: "1"])
            #expect(try json(hidden.body)["stock"] == nil)
            let shown = try await client.execute(uri: "/Product/p1", method: .get)
            #expect(try json(shown.body)["stock"] == 3)
            let list = try await client.execute(uri: "/Product/?name=Mug", method: .get, headers: [HTTPField.Name("X-Hide-Stock")!: "1"])
            #expect(!String(buffer: list.body).contains("stock"))
            let forbidden = try await client.execute(uri: "/Product/?price=gt=1", method: .get)
            #expect(forbidden.status == .forbidden)
            let staff = try await client.execute(uri: "/Product/?price=gt=1", method: .get, headers: [HTTPField.Name("X-Staff")!: "1"])
            #expect(staff.status == .ok)
            _ = try await client.execute(uri: "/Product/p1", method: .patch, body: ByteBuffer(string: #"{"stock":0}"#))
            #expect(try await client.execute(uri: "/Product/p1", method: .delete).status == .noContent)
        }
    }

    @Test func standaloneResourcesServeTheirMethods() async throws {
        try await withShop { _, client in
            _ = try await client.execute(uri: "/Product/p1", method: .put, body: ByteBuffer(string: #"{"name":"Mug","stock":3}"#))
            let stock = try await client.execute(uri: "/stock/p1", method: .get)
            #expect(stock.status == .ok)
            #expect(try json(stock.body)["stock"] == "3")
            let added = try await client.execute(uri: "/stock/p1", method: .post, body: ByteBuffer(string: #"{"add":4}"#))
            #expect(try json(added.body)["stock"] == 7)
            #expect(try await client.execute(uri: "/stock/nope", method: .get).status == .notFound)
            let bad = try await client.execute(uri: "/stock/p1", method: .post, body: ByteBuffer(string: #"{"add":"x"}"#))
            #expect(bad.status == .badRequest)
            let wrongMethod = try await client.execute(uri: "/stock/p1", method: .delete)
            #expect(wrongMethod.status == .methodNotAllowed)
            #expect(wrongMethod.headers[.allow] == "GET, HEAD, POST, OPTIONS")
            let openAPI = try await client.execute(uri: "/openapi.json", method: .get)
            #expect(String(buffer: openAPI.body).contains("/stock/{id}"))
        }
    }

    @Test func anOperationWritesSeveralTablesAndAJobAtomically() async throws {
        try await withShop { server, client in
            _ = try await client.execute(uri: "/Product/p1", method: .put, body: ByteBuffer(string: #"{"name":"Mug","stock":2}"#))
            let sale = try await server.modules.call(Shop.sell, SaleRequest(productId: "p1", quantity: 2))
            #expect(sale.quantity == 2)
            let oversell = await #expect(throws: OperationError.self) {
                try await server.modules.call(Shop.sell, SaleRequest(productId: "p1", quantity: 1))
            }
            #expect(oversell?.code == "conflict")
            // The refused sale left nothing behind: one sale, stock 0, one receipt job.
            let sales = try await client.execute(uri: "/Sale/?productId=p1", method: .get)
            #expect(try JSONParser.parse(String(buffer: sales.body)).arrayValue?.count == 1)
            #expect(try await server.store.get(Shop.products, "p1")?.stock == 0)
            // One receipt job, which the worker (this process has every role) runs.
            var listed = JSONObject()
            for _ in 0..<200 {
                listed = try json(try await client.execute(uri: "/_jobs?name=shop.receipt", method: .get, headers: adminHeaders).body)
                if listed["counts"]?.objectValue?["done"] == 1 { break }
                try await Task.sleep(for: .milliseconds(25))
            }
            #expect(listed["jobs"]?.arrayValue?.count == 1)
            #expect(listed["counts"]?.objectValue?["done"] == 1)
            #expect(try await client.execute(uri: "/_jobs?state=nope", method: .get, headers: adminHeaders).status == .badRequest)
            #expect(try await client.execute(uri: "/_jobs/999", method: .get, headers: adminHeaders).status == .notFound)
            #expect(try await client.execute(uri: "/_jobs/abc", method: .get, headers: adminHeaders).status == .badRequest)
        }
    }

    @Test func withoutTheApiRoleTablesAndResourcesAreNotServed() async throws {
        try await withShop(roles: ["shop", "worker"]) { (_, client) async throws in
            #expect(try await client.execute(uri: "/Product/p1", method: .get).status == .notFound)
            #expect(try await client.execute(uri: "/stock/p1", method: .get).status == .notFound)
            #expect(try await client.execute(uri: "/health", method: .get).status == .ok)
            #expect(try await client.execute(uri: "/_jobs", method: .get, headers: adminHeaders).status == .ok)
        }
    }

    @Test func resourcesThatClashAreRefusedAtStart() async throws {
        struct Clash: Module {
            let name = "clash"
            func register(_ builder: inout ModuleBuilder) {
                builder.resource("/Product/extra") { $0.get { _, _ in .text("x") } }
            }
        }
        struct Unknown: Module {
            let name = "unknown"
            func register(_ builder: inout ModuleBuilder) {
                builder.table(TableRef<Product>("Nothing")) { $0.get { p, _ in p } }
                builder.resource("/_jobs/x") { $0.get { _, _ in .text("x") } }
            }
        }
        let app = try TemporaryApp(["schema.graphql": shopSchema])
        defer { app.remove() }
        for (module, message) in [(Clash() as any Module, "which is an exported table"), (Unknown(), "which the schema does not declare")] {
            let error = await #expect(throws: RuntimeError.self) {
                _ = try await MicrolithServer.start(appDirectory: app.path, modules: [module], environment: [:]) { c in
                    c.store.directory = app.file("data")
                }
            }
            #expect(error?.message.contains(message) == true, "\(error?.message ?? "")")
        }
    }
}
