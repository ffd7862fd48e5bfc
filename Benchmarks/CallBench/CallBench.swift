import Foundation
import Microlith

/// The fragmentation tax: one operation called in-process and over HTTP to a second local
/// process, timed side by side.
///
/// `microlith-callbench [--calls N] [--concurrency C]` starts a copy of itself as the callee
/// (`microlith-callbench callee PORT`), then calls `bench.quote` N times each way: one at a time
/// (latency: p50, p99) and C at a time (throughput: calls/s).
@main
enum CallBench {
    struct QuoteRequest: Codable, Sendable {
        var sku: String
        var quantity: Int
    }

    struct Quote: Codable, Sendable {
        var sku: String
        var quantity: Int
        var unitCents: Int
        var totalCents: Int
    }

    static let quote = Operation<QuoteRequest, Quote>(module: "bench", name: "quote")

    struct BenchModule: Module {
        let name = "bench"
        func register(_ builder: inout ModuleBuilder) {
            builder.handle(CallBench.quote) { request, _ in
                let unit = 100 + request.sku.utf8.count
                return Quote(sku: request.sku, quantity: request.quantity, unitCents: unit, totalCents: unit * request.quantity)
            }
        }
    }

    static func main() async {
        Microlith.runConcurrencyOnEventLoops()
        let arguments = Array(CommandLine.arguments.dropFirst())
        do {
            if arguments.first == "callee" {
                guard arguments.count == 2, let port = Int(arguments[1]) else { throw Usage("callee PORT") }
                try await serve(port: port)
            } else {
                try await run(arguments)
            }
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            exit(1)
        }
    }

    struct Usage: Error, CustomStringConvertible {
        let description: String
        init(_ text: String) { description = "usage: microlith-callbench [--calls N] [--concurrency C] | \(text)" }
    }

    /// The callee: a microlith running the bench module on `port`.
    static func serve(port: Int) async throws {
        let app = NSTemporaryDirectory() + "microlith-callbench-\(getpid())"
        try FileManager.default.createDirectory(atPath: app, withIntermediateDirectories: true)
        try "type Nothing @table { id: ID @primaryKey }\n".write(toFile: app + "/schema.graphql", atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: app) }
        let server = try await MicrolithServer.start(appDirectory: app, modules: [BenchModule()], environment: [:]) { c in
            c.http.port = port
            c.mqtt.enabled = false
            c.store.directory = app + "/data"
            c.logLevel = "error"
        }
        try await server.run { _ in }
    }

    static func run(_ arguments: [String]) async throws {
        var calls = 20_000
        var concurrency = 32
        var i = 0
        while i < arguments.count {
            switch arguments[i] {
            case "--calls" where i + 1 < arguments.count: calls = Int(arguments[i + 1]) ?? -1
            case "--concurrency" where i + 1 < arguments.count: concurrency = Int(arguments[i + 1]) ?? -1
            default: throw Usage("unknown argument \(arguments[i])")
            }
            i += 2
        }
        guard calls > 0, concurrency > 0 else { throw Usage("--calls and --concurrency must be positive") }

        let port = Int.random(in: 20_000...60_000)
        let callee = try ChildProcess(executable: CommandLine.arguments[0], arguments: ["callee", String(port)])
        defer { callee.terminate() }

        let local = try Modules([BenchModule()])
        let remote = try Modules(
            [BenchModule()], runningHere: [], remotes: ["bench": RemoteEndpoint(url: "http://127.0.0.1:\(port)", timeout: .seconds(10))])
        // Wait for the callee to answer.
        var ready = false
        for _ in 0..<300 where !ready {
            ready = (try? await remote.call(quote, QuoteRequest(sku: "warm", quantity: 1))) != nil
            if !ready { try await Task.sleep(for: .milliseconds(50)) }
        }
        guard ready else { throw Usage("the callee did not start on port \(port)") }

        print("calls: \(calls) per run; concurrency \(concurrency); \(ProcessInfo.processInfo.activeProcessorCount) cores")
        var rows: [(String, Result)] = []
        for (name, modules) in [("in-process", local), ("HTTP, 2 processes", remote)] {
            _ = try await sequential(modules, calls: min(calls, 2000))  // warm-up
            let latency = try await sequential(modules, calls: calls)
            let throughput = try await concurrent(modules, calls: calls, concurrency: concurrency)
            rows.append((name, Result(p50: latency.p50, p99: latency.p99, sequentialRate: latency.rate, concurrentRate: throughput)))
        }
        await remote.shutdown()

        print("")
        print("| calls | p50 µs | p99 µs | calls/s (1 at a time) | calls/s (\(concurrency) at a time) |")
        print("|---|---:|---:|---:|---:|")
        for (name, r) in rows {
            print(
                "| \(name) | \(format(r.p50)) | \(format(r.p99)) | \(Int(r.sequentialRate)) | \(Int(r.concurrentRate)) |")
        }
        let (a, b) = (rows[0].1, rows[1].1)
        print("")
        print("fragmentation tax: p50 \(format(b.p50 / a.p50))× slower, throughput \(format(a.concurrentRate / b.concurrentRate))× lower over HTTP")
    }

    struct Result {
        var p50: Double
        var p99: Double
        var sequentialRate: Double
        var concurrentRate: Double
    }

    /// One call at a time: per-call latency in microseconds and the rate.
    static func sequential(_ modules: Modules, calls: Int) async throws -> (p50: Double, p99: Double, rate: Double) {
        var samples: [Double] = []
        samples.reserveCapacity(calls)
        let clock = ContinuousClock()
        let start = clock.now
        for n in 0..<calls {
            let t0 = clock.now
            _ = try await modules.call(quote, QuoteRequest(sku: "sku-\(n % 100)", quantity: n % 7 + 1))
            samples.append(microseconds(clock.now - t0))
        }
        let total = clock.now - start
        samples.sort()
        return (samples[samples.count / 2], samples[min(samples.count - 1, samples.count * 99 / 100)], Double(calls) / seconds(total))
    }

    /// `concurrency` callers at once: calls per second.
    static func concurrent(_ modules: Modules, calls: Int, concurrency: Int) async throws -> Double {
        let clock = ContinuousClock()
        let start = clock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<concurrency {
                group.addTask {
                    var n = worker
                    while n < calls {
                        _ = try await modules.call(quote, QuoteRequest(sku: "sku-\(n % 100)", quantity: n % 7 + 1))
                        n += concurrency
                    }
                }
            }
            try await group.waitForAll()
        }
        return Double(calls) / seconds(clock.now - start)
    }

    static func microseconds(_ d: Duration) -> Double { seconds(d) * 1_000_000 }
    static func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
    static func format(_ v: Double) -> String { String(format: v < 10 ? "%.2f" : "%.0f", v) }
}
