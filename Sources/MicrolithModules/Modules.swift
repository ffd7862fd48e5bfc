import AsyncHTTPClient
public import Foundation
public import Logging
public import MicrolithCache
public import MicrolithStore
public import MicrolithTables
import NIOCore
import NIOPosix
import Synchronization

/// The modules of an application, as one process sees them: some run here, others elsewhere.
///
/// ``call(_:_:)`` is the one way to reach an operation. When the module runs in this process it
/// is a direct async function call on the native input and output values (nothing is encoded or
/// copied to bytes); when configuration places it in another process, the identical call is a
/// JSON request over a pooled keep-alive HTTP connection with a deadline. Either way an
/// ``OperationError`` thrown by the operation reaches the caller unchanged, and any other error
/// thrown by the operation reaches it as ``OperationError/internal(_:)``.
public final class Modules: Sendable {
    private let local: [String: [String: LocalOperation]]
    private let remote: [String: RemoteModule]
    private let client: HTTPClient?
    private let closed = Atomic<Bool>(false)
    /// Modules of the application that run neither here nor at a configured address.
    private let unplaced: Set<String>
    /// This process's store, for operations, resources and jobs to read and write records.
    public let store: Store?
    /// The logger operations get when the caller gives none.
    public let logger: Logger
    /// The table hooks of the modules running here.
    public let tableHooks: [TableHooks]
    /// The standalone resources of the modules running here.
    public let resources: [ResourceRoute]
    /// The jobs of the modules running here, by `module.name`.
    package let jobs: [String: JobRegistration]
    /// The schedules of the modules running here.
    package let schedules: [ScheduleRegistration]
    /// The response caches the server answers from ahead of the router: the runtime's
    /// ``keptResponses`` first, then those the modules running here registered.
    public let responseCaches: [any ResponseCache]
    /// Responses of resources declared with `get(keep: true)`, kept while nothing they read
    /// changes; `nil` without a store or with a budget of 0.
    public let keptResponses: KeptResponses?
    /// The queries operations ran, parsed and bound.
    let boundQueries = BoundQueries()

    /// The modules of the application that run neither here nor at a configured address: calls
    /// to them fail with ``OperationError/unavailable(_:)``.
    public var unplacedModules: [String] { unplaced.sorted() }

    /// The modules that run in this process, sorted.
    public var localModules: [String] { local.keys.sorted() }
    /// The modules reached over HTTP, sorted.
    public var remoteModules: [String] { remote.keys.sorted() }

    /// Builds the modules of an application.
    ///
    /// - Parameters:
    ///   - modules: every module the application has.
    ///   - runningHere: the names of the modules this process runs; `nil` runs them all.
    ///   - remotes: where the modules that do not run here are reached.
    ///   - store: the store operations, resources and jobs read and write.
    ///   - keptResponseBytes: the memory budget of ``keptResponses`` (0 keeps none).
    ///   - logger: the logger of calls made without one.
    /// - Throws: ``ModuleConfigurationError`` naming the problem: a duplicate or invalid module
    ///   name, a bad registration, or a remote URL that is not `http://`. A module that runs
    ///   neither here nor at a configured URL is allowed (see ``unplacedModules``); calls to it
    ///   fail as unavailable.
    public init(
        _ modules: [any Module], runningHere: Set<String>? = nil, remotes: [String: RemoteEndpoint] = [:], store: Store? = nil,
        keptResponseBytes: Int = 64 << 20, logger: Logger = Logger(label: "microlith.modules")
    ) throws {
        var local: [String: [String: LocalOperation]] = [:]
        var hooks: [TableHooks] = []
        var resources: [ResourceRoute] = []
        var jobs: [String: JobRegistration] = [:]
        var schedules: [ScheduleRegistration] = []
        var responseCaches: [any ResponseCache] = []
        var unplaced = Set<String>()
        var problems: [String] = []
        var seen = Set<String>()
        for module in modules {
            guard OperationPath.isValidName(module.name) else {
                problems.append("module name '\(module.name)' must be 1–64 letters, digits, '-' or '_'")
                continue
            }
            guard seen.insert(module.name).inserted else {
                problems.append("two modules are named '\(module.name)'")
                continue
            }
            var builder = ModuleBuilder(module: module.name)
            module.register(&builder)
            problems += builder.problems
            if runningHere == nil || runningHere!.contains(module.name) {
                local[module.name] = builder.operations
                for h in builder.tableHooks {
                    if let other = hooks.first(where: { $0.table == h.table }) {
                        problems.append("modules '\(other.module)' and '\(module.name)' both declare hooks for table \(h.table)")
                    }
                    if let store, store.table(typeName: h.table) ?? store.table(name: h.table) == nil {
                        problems.append("module '\(module.name)' declares hooks for table \(h.table), which the schema does not declare")
                    }
                    hooks.append(h)
                }
                for r in builder.resources {
                    if let other = resources.first(where: { $0.path == r.path }) {
                        problems.append("modules '\(other.module)' and '\(module.name)' both declare resource \(r.path)")
                    }
                    resources.append(r)
                }
                for (_, job) in builder.jobs { jobs[job.name] = job }
                schedules += builder.schedules
                responseCaches += builder.responseCaches
            } else if remotes[module.name] == nil {
                unplaced.insert(module.name)
            }
        }
        for (name, endpoint) in remotes where local[name] == nil {
            guard let url = URL(string: endpoint.url), url.scheme == "http", url.host != nil else {
                problems.append("modules.\(name).url must be an http:// URL with a host, got '\(endpoint.url)'")
                continue
            }
        }
        guard problems.isEmpty else { throw ModuleConfigurationError(problems) }
        let remoteNames = remotes.keys.filter { local[$0] == nil }
        let client: HTTPClient? =
            remoteNames.isEmpty
            ? nil
            : HTTPClient(
                eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
                configuration: HTTPClient.Configuration(
                    connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 64)))
        self.local = local
        self.unplaced = unplaced
        self.store = store
        self.logger = logger
        self.tableHooks = hooks
        self.resources = resources
        self.jobs = jobs
        self.schedules = schedules
        let keeps = resources.contains { $0.keepsGet } || local.values.contains { $0.values.contains { $0.keep } }
        let kept = store.flatMap { keeps && keptResponseBytes > 0 ? KeptResponses(store: $0, limitBytes: keptResponseBytes) : nil }
        self.keptResponses = kept
        self.responseCaches = (kept.map { [$0] } ?? []) + responseCaches
        self.client = client
        var remote: [String: RemoteModule] = [:]
        if let client {
            for name in remoteNames { remote[name] = RemoteModule(name: name, endpoint: remotes[name]!, client: client) }
        }
        self.remote = remote
    }

    /// Calls `operation` with `input`, here or in the process that runs its module.
    public func call<Input, Output>(_ operation: Operation<Input, Output>, _ input: Input) async throws -> Output {
        try await call(operation, input, logger: logger)
    }

    /// Calls `operation` with `input`, logging to `logger` (which carries a request id).
    public func call<Input, Output>(_ operation: Operation<Input, Output>, _ input: Input, logger: Logger) async throws -> Output {
        if let operations = local[operation.module] {
            guard let handler = operations[operation.name] else {
                throw OperationError.unknownOperation(
                    "module '\(operation.module)' has no operation '\(operation.name)'; it has: \(operations.keys.sorted().joined(separator: ", "))")
            }
            let context = OperationContext(modules: self, operation: operation.qualifiedName, logger: logger)
            let output: any Sendable
            do {
                output = try await Spans.measure("operation \(operation.qualifiedName)", attributes: [("microlith.module", operation.module)]) {
                    if handler.keep, let kept = keptResponses, let key = handler.inputKey(input).map({ "op \(operation.qualifiedName) \($0)" }) {
                        return try await Self.keeping(handler, input, context, key: key, kept: kept)
                    }
                    return try await handler.invoke(input, context)
                }
            } catch let error as OperationError {
                throw error
            } catch let error as StoreError {
                throw OperationError(error)
            } catch {
                throw OperationError.internal("\(operation.qualifiedName) failed: \(error)")
            }
            guard let typed = output as? Output else {
                throw OperationError.internal("\(operation.qualifiedName) returns \(handler.outputType), not \(Output.self)")
            }
            return typed
        }
        if let module = remote[operation.module] {
            // What another process reads cannot be followed from here.
            ReadObservation.observer?.untracked("a call to \(operation.qualifiedName) in another process")
            return try await module.call(operation, input)
        }
        if unplaced.contains(operation.module) {
            throw OperationError.unavailable(
                "module '\(operation.module)' does not run in this process and modules.\(operation.module).url is not set; "
                    + "run it here (add it to roles) or give its address")
        }
        throw OperationError.unknownOperation("no module named '\(operation.module)' (known: \(knownModules))")
    }

    /// The kept result of a `keep: true` operation for `key`, or a new one, kept unless a commit
    /// touched what it read meanwhile.
    private static func keeping(
        _ handler: LocalOperation, _ input: any Sendable, _ context: OperationContext, key: String, kept: KeptResponses
    ) async throws -> any Sendable {
        let outer = ReadObservation.observer
        if let found = kept.value(for: key, reportingTo: outer) { return found }
        let recording = kept.begin(parent: outer)
        let output: any Sendable
        do {
            output = try await ReadObservation.$observer.withValue(recording) { try await handler.invoke(input, context) }
        } catch {
            kept.abandon(recording)
            throw error
        }
        kept.keep(value: output, for: key, estimatedBytes: handler.outputBytes(output), recording: recording)
        return output
    }

    /// Runs a local operation on JSON input and returns its JSON output (the HTTP entry point
    /// for other processes and external clients).
    public func callJSON(module: String, operation: String, body: Data, logger: Logger? = nil) async throws -> Data {
        guard let operations = local[module] else {
            throw OperationError.unknownOperation("no module named '\(module)' runs in this process (here: \(knownModules))")
        }
        guard let handler = operations[operation] else {
            throw OperationError.unknownOperation(
                "module '\(module)' has no operation '\(operation)'; it has: \(operations.keys.sorted().joined(separator: ", "))")
        }
        do {
            return try await Spans.measure("operation \(module).\(operation)", attributes: [("microlith.module", module)]) {
                try await handler.invokeJSON(body, OperationContext(modules: self, operation: "\(module).\(operation)", logger: logger))
            }
        } catch let error as OperationError {
            throw error
        } catch let error as StoreError {
            throw OperationError(error)
        } catch {
            throw OperationError.internal("\(module).\(operation) failed: \(error)")
        }
    }

    /// The operations that run here: module, operation, input and output type names, and what a
    /// caller over HTTP must hold.
    public var localOperations: [(module: String, operation: String, input: String, output: String, permission: Permission)] {
        local.keys.sorted().flatMap { module in
            local[module]!.values.sorted { $0.name < $1.name }.map { (module, $0.name, $0.inputType, $0.outputType, $0.permission) }
        }
    }

    /// What a caller over HTTP must hold to call `module.operation`; `nil` when it does not run here.
    public func permission(module: String, operation: String) -> Permission? {
        local[module]?[operation]?.permission
    }

    /// Closes the pooled connections to remote modules. Calls after this fail as unavailable.
    public func shutdown() async {
        guard let client, !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        try? await client.shutdown()
    }

    deinit {
        // A Modules dropped without shutdown() still releases its connections.
        if let client, !closed.exchange(true, ordering: .acquiringAndReleasing) {
            client.shutdown { _ in }
        }
    }

    private var knownModules: String {
        let all = (local.keys.map { $0 } + remote.keys.map { "\($0) (remote)" }).sorted()
        return all.isEmpty ? "none" : all.joined(separator: ", ")
    }
}

/// A mistake in how modules are declared or placed, found before anything runs.
public struct ModuleConfigurationError: Error, Sendable, CustomStringConvertible {
    /// Every problem found, one per entry.
    public let problems: [String]

    init(_ problems: [String]) {
        self.problems = problems
    }

    public var description: String { problems.joined(separator: "; ") }
}
