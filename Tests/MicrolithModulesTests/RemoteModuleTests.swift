import Foundation
import MicrolithModules
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import Testing

struct Terms: Codable, Sendable {
    var a: Int
    var b: Int
}

struct Sum: Codable, Sendable, Equatable {
    var sum: Int
}

enum Calc {
    static let add = Operation<Terms, Sum>(module: "calc", name: "add")
    static let refuse = Operation<Terms, Sum>(module: "calc", name: "refuse")
    static let crash = Operation<Terms, Sum>(module: "calc", name: "crash")
    static let misshapen = Operation<Terms, Sum>(module: "calc", name: "misshapen")
    static let silent = Operation<Terms, Sum>(module: "calc", name: "silent")
}

/// The calc module as the caller knows it: its operations run in the other process.
struct CalcModule: Module {
    let name = "calc"
    func register(_ builder: inout ModuleBuilder) {
        for operation in [Calc.add, Calc.refuse, Calc.crash, Calc.misshapen, Calc.silent] {
            builder.handle(operation) { _, _ in throw OperationError.internal("runs in the other process") }
        }
    }
}

/// The caller's side of a split module (`RemoteModule`, through ``Modules/call(_:_:)``) against
/// an HTTP server on a loopback port that answers each operation path in one way a callee can:
/// a result, a problem+json refusal, an HTML 500, a result of the wrong shape, or nothing. The
/// same calls against a real microlith are `SplitModulesTests`' (MicrolithRuntimeTests).
@Suite(.timeLimit(.minutes(1))) struct RemoteModuleTests {
    /// What the server saw of the last `add` request: method, content type, body.
    final class Seen: Sendable {
        let request = Mutex<(method: String, contentType: String?, accept: String?, body: String)?>(nil)
    }

    /// Answers `POST /_operations/calc/{operation}` as described above.
    final class CalleeHandler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let seen: Seen
        var head: HTTPRequestHead?
        var body = ByteBuffer()

        init(seen: Seen) { self.seen = seen }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let h):
                head = h
                body.clear()
            case .body(var b):
                body.writeBuffer(&b)
            case .end:
                guard let head else { return }
                answer(head, context: context)
            }
        }

        func answer(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
            let text = String(buffer: body)
            switch head.uri {
            case "/_operations/calc/add":
                seen.request.withLock {
                    $0 = (head.method.rawValue, head.headers["content-type"].first, head.headers["accept"].first, text)
                }
                let terms = try? JSONDecoder().decode(Terms.self, from: Data(text.utf8))
                respond(.ok, "application/json", terms.map { #"{"sum":\#($0.a + $0.b)}"# } ?? "{}", context: context)
            case "/_operations/calc/refuse":
                respond(
                    .conflict, "application/problem+json",
                    #"{"type":"about:blank","title":"Conflict","status":409,"code":"soldOut","detail":"none left"}"#, context: context)
            case "/_operations/calc/crash":
                respond(.internalServerError, "text/html", "<h1>oops</h1>", context: context)
            case "/_operations/calc/misshapen":
                respond(.ok, "application/json", #"{"total":"three"}"#, context: context)
            default:
                break  // silent: never answers
            }
        }

        func respond(_ status: HTTPResponseStatus, _ type: String, _ text: String, context: ChannelHandlerContext) {
            let headers: HTTPHeaders = ["content-type": type, "content-length": "\(text.utf8.count)"]
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }

    /// Runs the callee on a free loopback port while `body` runs with a caller pointed at it.
    func withCallee(timeout: Duration = .seconds(5), _ body: (Modules, Seen) async throws -> Void) async throws {
        let seen = Seen()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(CalleeHandler(seen: seen))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(channel.localAddress?.port)
        let caller = try Modules(
            [CalcModule()], runningHere: [], remotes: ["calc": RemoteEndpoint(url: "http://127.0.0.1:\(port)", timeout: timeout)])
        do {
            try await body(caller, seen)
        } catch {
            await caller.shutdown()
            try? await channel.close()
            throw error
        }
        await caller.shutdown()
        try await channel.close()
    }

    @Test func aCallPostsTheInputAsJSONAndDecodesTheAnswer() async throws {
        try await withCallee { caller, seen in
            #expect(try await caller.call(Calc.add, Terms(a: 2, b: 40)) == Sum(sum: 42))
            let request = try #require(seen.request.withLock { $0 })
            #expect(request.method == "POST")
            #expect(request.contentType == "application/json")
            #expect(request.accept == "application/json")
            let sent = try JSONDecoder().decode(Terms.self, from: Data(request.body.utf8))
            #expect(sent.a == 2 && sent.b == 40)
            // Calls in a row reuse the pool and all succeed.
            for i in 0..<20 { #expect(try await caller.call(Calc.add, Terms(a: i, b: i)) == Sum(sum: 2 * i)) }
        }
    }

    @Test func aProblemAnswerBecomesTheOperationErrorItDescribes() async throws {
        try await withCallee { caller, _ in
            await #expect(throws: OperationError(status: 409, code: "soldOut", message: "none left")) {
                try await caller.call(Calc.refuse, Terms(a: 1, b: 1))
            }
        }
    }

    @Test func anAnswerThatIsNotAProblemIsABadResponse() async throws {
        try await withCallee { caller, _ in
            let error = try await #require(throws: OperationError.self) { try await caller.call(Calc.crash, Terms(a: 1, b: 1)) }
            #expect(error.status == 502 && error.code == "badResponse")
            #expect(error.message.contains("HTTP 500") && error.message.contains("<h1>oops</h1>"), "\(error)")
        }
    }

    @Test func aResultOfTheWrongShapeIsABadResponse() async throws {
        try await withCallee { caller, _ in
            let error = try await #require(throws: OperationError.self) { try await caller.call(Calc.misshapen, Terms(a: 1, b: 1)) }
            #expect(error.status == 502 && error.code == "badResponse")
            #expect(error.message.contains("not a Sum"), "\(error)")
        }
    }

    @Test func aCalleeThatDoesNotAnswerTimesOutAtTheDeadline() async throws {
        try await withCallee(timeout: .milliseconds(300)) { caller, _ in
            let started = ContinuousClock.now
            let error = try await #require(throws: OperationError.self) { try await caller.call(Calc.silent, Terms(a: 1, b: 1)) }
            let took = ContinuousClock.now - started
            #expect(error.status == 504 && error.code == "timeout", "\(error)")
            // The callee never answers: any bound well short of forever shows the deadline worked.
            // A loose one, so a machine busy with other work does not fail the test.
            #expect(took >= .milliseconds(250) && took < .seconds(15), "took \(took)")
        }
    }

    @Test func aCalleeThatIsNotThereIsUnavailable() async throws {
        // Port 1 (tcpmux), where nothing listens: a port freed a moment ago could be taken meanwhile
        // by a server another test starts (a CI run saw that).
        let caller = try Modules(
            [CalcModule()], runningHere: [], remotes: ["calc": RemoteEndpoint(url: "http://127.0.0.1:1", timeout: .seconds(1))])
        let error = await #expect(throws: OperationError.self) { try await caller.call(Calc.add, Terms(a: 1, b: 1)) }
        await caller.shutdown()
        #expect(error?.status == 503 && error?.code == "unavailable", "\(String(describing: error))")
    }
}
