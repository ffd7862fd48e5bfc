import Foundation

/// A part of an application: a named group of operations (and, through the runtime, resources).
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

    /// Declares the module's operations.
    func register(_ builder: inout ModuleBuilder)
}

/// What a running operation can reach: the other modules (to call them) and a logger.
public struct OperationContext: Sendable {
    /// Every module of the application, local or remote, to call through.
    public let modules: Modules
    /// The operation being run, `module.name`.
    public let operation: String
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
}

/// Collects a module's operations while it registers them.
public struct ModuleBuilder {
    /// The module being built.
    public let module: String
    var operations: [String: LocalOperation] = [:]
    var problems: [String] = []

    init(module: String) {
        self.module = module
    }

    /// Implements `operation` with `body`. The operation must belong to this module, and each
    /// operation is implemented once.
    public mutating func handle<Input, Output>(
        _ operation: Operation<Input, Output>,
        _ body: @escaping @Sendable (Input, OperationContext) async throws -> Output
    ) {
        guard operation.module == module else {
            problems.append("module '\(module)' cannot implement \(operation.qualifiedName): it belongs to module '\(operation.module)'")
            return
        }
        guard OperationPath.isValidName(operation.name) else {
            problems.append("operation name '\(operation.name)' of module '\(module)' must be 1–64 letters, digits, '-' or '_'")
            return
        }
        guard operations[operation.name] == nil else {
            problems.append("operation \(operation.qualifiedName) is implemented twice")
            return
        }
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
                    input = try JSONDecoder().decode(Input.self, from: data)
                } catch {
                    throw OperationError.badRequest("the body is not a valid \(Input.self) for \(qualified): \(Self.describe(error))")
                }
                let output = try await body(input, context)
                do {
                    return try JSONEncoder().encode(output)
                } catch {
                    throw OperationError.internal("\(qualified) returned a \(Output.self) that cannot be encoded: \(error)")
                }
            },
            acceptsInput: { $0 is Input }
        )
    }

    /// A short account of a decoding error: which key or value, and why.
    static func describe(_ error: any Error) -> String {
        guard let e = error as? DecodingError else { return "\(error)" }
        func path(_ c: DecodingError.Context) -> String {
            let p = c.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
            return p.isEmpty ? "" : " at '\(p)'"
        }
        switch e {
        case .keyNotFound(let key, let c): return "missing '\(key.stringValue)'\(path(c))"
        case .typeMismatch(let type, let c): return "expected \(type)\(path(c))"
        case .valueNotFound(let type, let c): return "expected \(type)\(path(c)), got null"
        case .dataCorrupted(let c): return "\(c.debugDescription)\(path(c))"
        @unknown default: return "\(error)"
        }
    }
}
