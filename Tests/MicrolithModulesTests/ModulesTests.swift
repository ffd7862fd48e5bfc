import Foundation
import MicrolithModules
import Synchronization
import Testing

/// Counts how often values of ``Counted`` are encoded or decoded, to prove in-process calls do neither.
let codingCount = Atomic<Int>(0)

struct Counted: Codable, Sendable, Equatable {
    var value: Int

    init(value: Int) { self.value = value }

    init(from decoder: any Decoder) throws {
        codingCount.add(1, ordering: .relaxed)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        value = try c.decode(Int.self, forKey: .value)
    }

    func encode(to encoder: any Encoder) throws {
        codingCount.add(1, ordering: .relaxed)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(value, forKey: .value)
    }

    enum CodingKeys: String, CodingKey { case value }
}

enum Math {
    static let double = Operation<Counted, Counted>(module: "math", name: "double")
    static let fail = Operation<Counted, Counted>(module: "math", name: "fail")
    static let crash = Operation<Counted, Counted>(module: "math", name: "crash")
    static let quadruple = Operation<Counted, Counted>(module: "math", name: "quadruple")
}

struct SomeFailure: Error {}

struct MathModule: Module {
    let name = "math"
    func register(_ builder: inout ModuleBuilder) {
        builder.handle(Math.double) { input, _ in Counted(value: input.value * 2) }
        builder.handle(Math.fail) { input, _ in throw OperationError.conflict("cannot take \(input.value)") }
        builder.handle(Math.crash) { _, _ in throw SomeFailure() }
        // Calls another operation through the runtime, as any module would.
        builder.handle(Math.quadruple) { input, context in
            let twice = try await context.modules.call(Math.double, input)
            return try await context.modules.call(Math.double, twice)
        }
    }
}

@Suite struct ModulesTests {
    @Test func anInProcessCallEncodesNothing() async throws {
        let modules = try Modules([MathModule()])
        let before = codingCount.load(ordering: .relaxed)
        let result = try await modules.call(Math.quadruple, Counted(value: 3))
        #expect(result == Counted(value: 12))
        #expect(codingCount.load(ordering: .relaxed) == before, "an in-process call must not encode or decode")
    }

    @Test func theJSONEntryPointDoesEncode() async throws {
        // The counter itself works: the HTTP entry point decodes the input and encodes the output.
        let modules = try Modules([MathModule()])
        let before = codingCount.load(ordering: .relaxed)
        let out = try await modules.callJSON(module: "math", operation: "double", body: Data(#"{"value":5}"#.utf8))
        #expect(String(decoding: out, as: UTF8.self) == #"{"value":10}"#)
        #expect(codingCount.load(ordering: .relaxed) >= before + 2)
    }

    @Test func operationErrorsReachTheCallerUnchanged() async throws {
        let modules = try Modules([MathModule()])
        await #expect(throws: OperationError.conflict("cannot take 7")) { try await modules.call(Math.fail, Counted(value: 7)) }
        let error = await #expect(throws: OperationError.self) { try await modules.call(Math.crash, Counted(value: 1)) }
        #expect(error?.code == "internal")
        #expect(error?.status == 500)
    }

    @Test func unknownOperationsAndModulesAreNamed() async throws {
        let modules = try Modules([MathModule()])
        let missing = Operation<Counted, Counted>(module: "math", name: "triple")
        let error = await #expect(throws: OperationError.self) { try await modules.call(missing, Counted(value: 1)) }
        #expect(error?.code == "unknownOperation")
        #expect(error?.message.contains("crash, double, fail, quadruple") == true)
        let elsewhere = Operation<Counted, Counted>(module: "stats", name: "mean")
        let error2 = await #expect(throws: OperationError.self) { try await modules.call(elsewhere, Counted(value: 1)) }
        #expect(error2?.message.contains("no module named 'stats'") == true)
    }

    @Test func badJSONInputIsABadRequestNamingTheField() async throws {
        let modules = try Modules([MathModule()])
        let error = await #expect(throws: OperationError.self) {
            try await modules.callJSON(module: "math", operation: "double", body: Data(#"{"value":"x"}"#.utf8))
        }
        #expect(error?.status == 400)
        #expect(error?.message.contains("'value'") == true)
    }

    @Test func aMistypedCallIsRefused() async throws {
        let modules = try Modules([MathModule()])
        let wrong = Operation<String, Counted>(module: "math", name: "double")
        let error = await #expect(throws: OperationError.self) { try await modules.call(wrong, "3") }
        #expect(error?.status == 400)
    }

    struct Misplaced: Module {
        let name = "other"
        func register(_ builder: inout ModuleBuilder) {
            builder.handle(Math.double) { input, _ in input }
        }
    }

    struct Twice: Module {
        let name = "twice"
        static let op = Operation<Int, Int>(module: "twice", name: "op")
        func register(_ builder: inout ModuleBuilder) {
            builder.handle(Self.op) { value, _ in value }
            builder.handle(Self.op) { value, _ in value }
        }
    }

    @Test func registrationMistakesAreReportedTogether() throws {
        let error = #expect(throws: ModuleConfigurationError.self) { try Modules([Misplaced(), Twice(), MathModule(), MathModule()]) }
        let text = error?.description ?? ""
        #expect(text.contains("module 'other' cannot implement operation math.double"))
        #expect(text.contains("twice.op is implemented twice"))
        #expect(text.contains("two modules are named 'math'"))
    }

    @Test func aModuleNotRunHereNeedsAnAddress() async throws {
        let unplaced = try Modules([MathModule()], runningHere: [])
        #expect(unplaced.unplacedModules == ["math"])
        let error = await #expect(throws: OperationError.self) { try await unplaced.call(Math.double, Counted(value: 1)) }
        #expect(error?.code == "unavailable")
        #expect(error?.message.contains("modules.math.url") == true)
        let modules = try Modules([MathModule()], runningHere: [], remotes: ["math": RemoteEndpoint(url: "http://127.0.0.1:1")])
        #expect(modules.localModules.isEmpty)
        #expect(modules.remoteModules == ["math"])
        let bad = #expect(throws: ModuleConfigurationError.self) {
            try Modules([MathModule()], runningHere: [], remotes: ["math": RemoteEndpoint(url: "ftp://x")])
        }
        #expect(bad?.description.contains("http://") == true)
    }

    @Test func aDownCalleeFailsCleanlyAsUnavailable() async throws {
        // Port 1 on loopback: nothing listens there.
        let modules = try Modules(
            [MathModule()], runningHere: [], remotes: ["math": RemoteEndpoint(url: "http://127.0.0.1:1", timeout: .seconds(1))])
        let error = await #expect(throws: OperationError.self) { try await modules.call(Math.double, Counted(value: 1)) }
        #expect(error?.code == "unavailable" || error?.code == "timeout")
        await modules.shutdown()
    }
}
