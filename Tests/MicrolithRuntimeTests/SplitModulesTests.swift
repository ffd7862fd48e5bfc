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

struct OfferRequest: Codable, Sendable {
    var sku: String
    var asOf: Date
    var days: Int
}

struct Offer: Codable, Sendable, Equatable {
    var sku: String
    var asOf: Date
    var validUntil: Date
    var note: Data
}

enum Pricing {
    static let quote = Operation<QuoteRequest, Quote>(module: "pricing", name: "quote")
    static let slow = Operation<QuoteRequest, Quote>(module: "pricing", name: "slow")
    static let offer = Operation<OfferRequest, Offer>(module: "pricing", name: "offer")
}

struct PricingModule: Module {
    let name = "pricing"
    func register(_ builder: inout ModuleBuilder) {
        builder.handle(Pricing.quote) { request, _ in
            guard request.quantity > 0 else { throw OperationError.badRequest("quantity must be positive, got \(request.quantity)") }
            guard request.sku != "gone" else { throw OperationError.notFound("no product \(request.sku)") }
            return Quote(sku: request.sku, quantity: request.quantity, total: 2.5 * Double(request.quantity))
        }
        builder.handle(Pricing.offer) { request, _ in
            Offer(
                sku: request.sku, asOf: request.asOf, validUntil: request.asOf.addingTimeInterval(Double(request.days) * 86_400),
                note: Data("valid \(request.days) days".utf8))
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

    /// Dates travel as the callee decodes them (ISO 8601 text): with Foundation's `JSONEncoder`
    /// on one side, a date became a number of seconds since 2001 that the other side read as
    /// milliseconds since 1970, in both directions, with no error.
    @Test func datesAndBytesCrossTheSplitUnchanged() async throws {
        let asOf = Date(timeIntervalSince1970: 1_717_000_000.123)
        let request = OfferRequest(sku: "A1", asOf: asOf, days: 30)
        let here = try await Modules([PricingModule()]).call(Pricing.offer, request)
        #expect(here.validUntil == Date(timeIntervalSince1970: 1_717_000_000.123 + 30 * 86_400))
        try await withPricingServer { port in
            let there = try await caller(port: port).call(Pricing.offer, request)
            #expect(there == here)
            #expect(there.asOf == asOf)
        }
        // What an external client gets from the operation route: the same text the store uses.
        let json = try await Modules([PricingModule()]).callJSON(
            module: "pricing", operation: "offer", body: Data(#"{"sku":"B2","asOf":"2024-05-29T16:26:40.123Z","days":1}"#.utf8))
        let text = String(decoding: json, as: UTF8.self)
        #expect(text.contains(#""asOf":"2024-05-29T16:26:40.123Z""#), "\(text)")
        #expect(text.contains(#""validUntil":"2024-05-30T16:26:40.123Z""#), "\(text)")
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
