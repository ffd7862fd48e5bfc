import Foundation
import MicrolithHTTP
import MicrolithMQTT
import MicrolithModules
import MicrolithRuntime
import MicrolithStore
import NIOCore
import Synchronization
import Testing

struct Quote: Codable, Sendable, Equatable {
    var sku: String
    var quantity: Int
    var total: Double
}

struct QuoteRequest: Codable, Sendable {
    var sku: String
    var quantity: Int
}

enum Pricing {
    static let quote = Operation<QuoteRequest, Quote>(module: "pricing", name: "quote")
    static let slow = Operation<QuoteRequest, Quote>(module: "pricing", name: "slow")
}

struct PricingModule: Module {
    let name = "pricing"
    func register(_ builder: inout ModuleBuilder) {
        builder.handle(Pricing.quote) { request, _ in
            guard request.quantity > 0 else { throw OperationError.badRequest("quantity must be positive, got \(request.quantity)") }
            guard request.sku != "gone" else { throw OperationError.notFound("no product \(request.sku)") }
            return Quote(sku: request.sku, quantity: request.quantity, total: 2.5 * Double(request.quantity))
        }
        builder.handle(Pricing.slow) { request, _ in
            try await Task.sleep(for: .seconds(3))
            return Quote(sku: request.sku, quantity: request.quantity, total: 0)
        }
    }
}

/// The same operation called in-process and across a real HTTP connection to another server.
@Suite struct SplitModulesTests {
    /// Runs a microlith with the pricing module on a free loopback port while `body` runs.
    func withPricingServer(_ body: (Int) async throws -> Void) async throws {
        let app = try TemporaryApp(["schema.graphql": todoSchema])
        defer { app.remove() }
        let server = try await MicrolithServer.start(appDirectory: app.path, modules: [PricingModule()], environment: [:]) { c in
            c.http.port = 0
            c.mqtt.enabled = false
            c.store.directory = app.file("data")
            c.logLevel = "error"
        }
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let serving = Task {
            defer { continuation.finish() }
            try await server.run { channel in continuation.yield(channel.localAddress?.port ?? 0) }
        }
        defer { serving.cancel() }
        var iterator = ports.makeAsyncIterator()
        let port = try #require(await iterator.next())
        try await body(port)
        serving.cancel()
        _ = await serving.result
    }

    func caller(port: Int, timeout: Duration = .seconds(5)) throws -> Modules {
        try Modules([PricingModule()], runningHere: [], remotes: ["pricing": RemoteEndpoint(url: "http://127.0.0.1:\(port)", timeout: timeout)])
    }

    @Test func inProcessAndSplitCallsAnswerTheSame() async throws {
        let local = try Modules([PricingModule()])
        let request = QuoteRequest(sku: "A1", quantity: 4)
        let here = try await local.call(Pricing.quote, request)
        try await withPricingServer { port in
            let remote = try caller(port: port)
            let there = try await remote.call(Pricing.quote, request)
            #expect(there == here)
            // Many calls reuse pooled connections and all succeed.
            try await withThrowingTaskGroup(of: Quote.self) { group in
                for i in 1...50 { group.addTask { try await remote.call(Pricing.quote, QuoteRequest(sku: "S\(i)", quantity: i)) } }
                var count = 0
                for try await quote in group {
                    #expect(quote.total == 2.5 * Double(quote.quantity))
                    count += 1
                }
                #expect(count == 50)
            }
            await remote.shutdown()
        }
    }

    @Test func errorsKeepTheirMeaningAcrossProcesses() async throws {
        let local = try Modules([PricingModule()])
        try await withPricingServer { port in
            let remote = try caller(port: port)
            for request in [QuoteRequest(sku: "gone", quantity: 1), QuoteRequest(sku: "A1", quantity: 0)] {
                let here = await #expect(throws: OperationError.self) { try await local.call(Pricing.quote, request) }
                let there = await #expect(throws: OperationError.self) { try await remote.call(Pricing.quote, request) }
                #expect(here != nil)
                #expect(there == here)
            }
            await remote.shutdown()
        }
    }

    @Test func aSlowCalleeTimesOutInsteadOfHanging() async throws {
        try await withPricingServer { port in
            let remote = try caller(port: port, timeout: .milliseconds(300))
            let started = ContinuousClock.now
            let error = await #expect(throws: OperationError.self) { try await remote.call(Pricing.slow, QuoteRequest(sku: "A", quantity: 1)) }
            #expect(error?.code == "timeout")
            #expect(ContinuousClock.now - started < .seconds(3), "the call must give up at its deadline, not wait for the answer")
            await remote.shutdown()
        }
    }

    @Test func aStoppedCalleeIsUnavailableOrTimedOut() async throws {
        let stoppedPort = Atomic<Int>(0)
        try await withPricingServer { port in stoppedPort.store(port, ordering: .relaxed) }
        let remote = try caller(port: stoppedPort.load(ordering: .relaxed), timeout: .milliseconds(500))
        let error = await #expect(throws: OperationError.self) { try await remote.call(Pricing.quote, QuoteRequest(sku: "A", quantity: 1)) }
        #expect(["unavailable", "timeout"].contains(error?.code ?? ""))
        await remote.shutdown()
    }

    @Test func rolesThatNameNothingAreRefused() async throws {
        let app = try TemporaryApp(["schema.graphql": todoSchema, "microlith.yaml": "roles: [api, billing]\n"])
        defer { app.remove() }
        let error = await #expect(throws: RuntimeError.self) {
            _ = try await MicrolithServer.start(appDirectory: app.path, modules: [PricingModule()], environment: [:]) { c in
                c.store.directory = app.file("data")
            }
        }
        #expect(error?.message.contains("unknown role 'billing'") == true)
    }
}
