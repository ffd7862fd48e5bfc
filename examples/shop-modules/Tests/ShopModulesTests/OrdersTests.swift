import Foundation
import Microlith
import ShopModules
import Testing

/// The orders module against a real store: the example app's folder with a fresh data folder.
@Suite struct OrdersTests {
    static let appFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("app").path

    func withServer(_ body: (MicrolithServer) async throws -> Void) async throws {
        let data = NSTemporaryDirectory() + "shop-orders-tests-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: data) }
        let server = try await MicrolithServer.start(
            appDirectory: Self.appFolder, modules: [PricingModule(), CartModule(), OrdersModule()], environment: [:]
        ) { c in
            c.store.directory = data
            c.logLevel = "error"
        }
        defer { server.store.close() }
        try await body(server)
    }

    let cart = Cart(items: [QuoteRequest(sku: "bread", quantity: 2), QuoteRequest(sku: "apple", quantity: 10)])

    @Test func checkoutStoresTheOrderAndAWorkerFulfilsIt() async throws {
        try await withServer { server in
            let order = try await server.modules.call(Orders.checkout, Checkout(cart: cart))
            #expect(order.status == "placed")
            #expect(order.totalCents == 2 * 250 + 450)
            let queue = JobQueue(store: server.store)
            #expect(try await queue.list(database: "data", name: "orders.fulfil").count == 1)
            let worker = JobWorker(
                store: server.store, modules: server.modules, configuration: JobConfiguration(pollInterval: .milliseconds(20)),
                logger: server.logger)
            let running = Task { try await worker.run() }
            defer { running.cancel() }
            var fulfilled: Order?
            for _ in 0..<250 {
                fulfilled = try await server.store.get(Orders.table, RecordKey(order.id))
                if fulfilled?.status == "fulfilled" { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(fulfilled?.status == "fulfilled")
            #expect(fulfilled?.fulfilledAt != nil)
        }
    }

    @Test func aRefusedCheckoutLeavesNoOrderAndNoJob() async throws {
        try await withServer { server in
            let bad = Checkout(cart: Cart(items: [QuoteRequest(sku: "caviar", quantity: 1)]))
            let error = await #expect(throws: OperationError.self) { try await server.modules.call(Orders.checkout, bad) }
            #expect(error?.code == "notFound")
            #expect(try await JobQueue(store: server.store).list(database: "data").isEmpty)
            let orders = try await server.store.write { txn in try txn.records(Orders.table) }
            #expect(orders.isEmpty)
        }
    }
}
