import Foundation
import MicrolithCache
import MicrolithStore
public import MicrolithTables

/// A part of an application: a named group of operations, resources (hooks on tables and
/// standalone paths), background jobs and scheduled tasks.
///
/// ```swift
/// struct PricingModule: Module {
///     let name = "pricing"
///     func register(_ builder: inout ModuleBuilder) {
///         builder.handle(Pricing.quote) { request, context in
///             Quote(sku: request.sku, total: 9.5 * Double(request.quantity))
///         }
///     }
/// }
/// ```
public protocol Module: Sendable {
    /// The module's name: unique in an application, the key under `modules:` in
    /// `microlith.yaml`, and a segment of its operations' URLs.
    var name: String { get }

    /// Declares the module's operations, resources, jobs and schedules.
    func register(_ builder: inout ModuleBuilder)
}

/// One registered operation, with both ways in: native values (in-process calls) and JSON
/// bytes (calls from other processes and external clients).
struct LocalOperation: Sendable {
    let name: String
    let inputType: String
    let outputType: String
    /// Runs on native values: no encoding, no copying to bytes.
    let invoke: @Sendable (any Sendable, OperationContext) async throws -> any Sendable
    /// Decodes JSON input, runs, encodes JSON output.
    let invokeJSON: @Sendable (Data, OperationContext) async throws -> Data
    /// Whether `value` is this operation's input type.
    let acceptsInput: @Sendable (any Sendable) -> Bool
    /// Whether results are kept (`handle(_:keep:requires:_:)`).
    var keep = false
    /// What a caller over HTTP must hold (in-process calls are module code, and trusted).
    var permission = Permission.anyone
    /// The key of an input among kept results (its JSON, keys sorted), `nil` when it has none.
    var inputKey: @Sendable (any Sendable) -> String? = { _ in nil }
    /// About how many bytes an output takes (its JSON length), for the kept results' budget.
    var outputBytes: @Sendable (any Sendable) -> Int = { _ in 0 }
}

/// Collects a module's operations while it registers them.
public struct ModuleBuilder {
    /// The module being built.
    public let module: String
    var operations: [String: LocalOperation] = [:]
    var tableHooks: [TableHooks] = []
    var resources: [ResourceRoute] = []
    var jobs: [String: JobRegistration] = [:]
    var schedules: [ScheduleRegistration] = []
    var responseCaches: [any ResponseCache] = []
    var problems: [String] = []

    init(module: String) {
        self.module = module
    }

    /// Implements `operation` with `body`. The operation must belong to this module, and each
    /// operation is implemented once.
    ///
    /// `requires` is what a caller from outside the process must hold to call it at
    /// `POST /_operations/{module}/{operation}` (the Roles article): `.anyone` by default, or a
    /// signed-in user, a role, a table permission, a super user. Calls from module code (in this
    /// process) are trusted and not checked.
    ///
    /// With `keep: true`, in-process calls keep the result for each input (compared by its JSON)
    /// until a commit touches something `body` read, as kept responses do (the Caching article): the
    /// result must depend only on the input and the data read. A kept page calling a kept
    /// operation depends on what the operation read, whether the result was kept or computed.
    public mutating func handle<Input, Output>(
        _ operation: Operation<Input, Output>, keep: Bool = false, requires permission: Permission = .anyone,
        _ body: @escaping @Sendable (Input, OperationContext) async throws -> Output
    ) {
        guard admits("operation", owner: operation.module, name: operation.name, taken: operations[operation.name] != nil) else { return }
        let qualified = operation.qualifiedName
        operations[operation.name] = LocalOperation(
            name: operation.name,
            inputType: String(describing: Input.self),
            outputType: String(describing: Output.self),
            invoke: { input, context in
                guard let typed = input as? Input else {
                    throw OperationError.badRequest("\(qualified) takes \(Input.self), got \(type(of: input))")
                }
                return try await body(typed, context)
            },
            invokeJSON: { data, context in
                let input: Input
                do {
                    input = try RecordCoder.decodeJSON(Input.self, from: data)
                } catch {
                    throw OperationError.badRequest("the body is not a valid \(Input.self) for \(qualified): \(describe(error))")
                }
                let output = try await body(input, context)
                do {
                    return Data(try RecordCoder.encodeJSON(output))
                } catch {
                    throw OperationError.internal("\(qualified) returned a \(Output.self) that cannot be encoded: \(error)")
                }
            },
            acceptsInput: { $0 is Input },
            keep: keep,
            permission: permission,
            inputKey: { input in
                guard let typed = input as? Input else { return nil }
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                return (try? encoder.encode(typed)).map { String(decoding: $0, as: UTF8.self) }
            },
            outputBytes: { output in
                guard let typed = output as? Output else { return 0 }
                return (try? JSONEncoder().encode(typed).count) ?? 0
            }
        )
    }

    /// Whether a `kind` (operation, job) named `name` of module `owner` may be implemented here;
    /// records the problem when not.
    mutating func admits(_ kind: String, owner: String, name: String, taken: Bool) -> Bool {
        let qualified = "\(owner).\(name)"
        if owner != module {
            problems.append("module '\(module)' cannot implement \(kind) \(qualified): it belongs to module '\(owner)'")
        } else if !OperationPath.isValidName(name) {
            problems.append("\(kind) name '\(name)' of module '\(module)' must be 1–64 letters, digits, '-' or '_'")
        } else if taken {
            problems.append("\(kind) \(qualified) is implemented twice")
        } else {
            return true
        }
        return false
    }

    /// Implements the background job `job` with `body`. The job belongs to this module; a
    /// process with the `worker` role that runs this module executes it.
    public mutating func job<Input>(_ job: Job<Input>, _ body: @escaping @Sendable (Input, OperationContext) async throws -> Void) {
        guard admits("job", owner: job.module, name: job.name, taken: jobs[job.name] != nil) else { return }
        let qualified = job.qualifiedName
        jobs[job.name] = JobRegistration(
            name: qualified, retry: job.retry,
            run: { payload, context in
                let input: Input
                do {
                    input = try RecordCoder.decodeJSON(Input.self, from: payload)
                } catch {
                    throw OperationError.badRequest("the stored input of \(qualified) is not a valid \(Input.self): \(describe(error))")
                }
                try await body(input, context)
            })
    }
}

/// A short account of a decoding error: which key or value, and why.
func describe(_ error: any Error) -> String {
    guard let e = error as? DecodingError else { return "\(error)" }
    return RecordCoder.describe(e)
}
