public import Foundation
import MicrolithStore
public import MicrolithTables

/// What a standalone resource answers: a status, headers and a body.
public struct ResourceResponse: Sendable {
    public var status: Int
    /// Response headers by name.
    public var headers: [String: String]
    public var body: Data

    public init(status: Int = 200, headers: [String: String] = [:], body: Data = Data()) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// `value` as JSON with `status`.
    public static func json<T: Encodable>(_ value: T, status: Int = 200) throws -> ResourceResponse {
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            return ResourceResponse(status: status, headers: ["Content-Type": "application/json"], body: try encoder.encode(value))
        } catch {
            throw OperationError.internal("the response (\(T.self)) cannot be encoded: \(error)")
        }
    }

    /// `text` as `text/plain` (or another `contentType`).
    public static func text(_ text: String, status: Int = 200, contentType: String = "text/plain; charset=utf-8") -> ResourceResponse {
        ResourceResponse(status: status, headers: ["Content-Type": contentType], body: Data(text.utf8))
    }
}

/// A request to a standalone resource, with its body.
public struct ResourceCall: Sendable {
    /// Method, path, query, parameters, headers.
    public var request: ResourceRequest
    /// The body, as received (within the server's size limit).
    public var body: Data

    public init(request: ResourceRequest, body: Data) {
        self.request = request
        self.body = body
    }

    /// The body decoded as JSON into `T`.
    /// - Throws: ``OperationError/badRequest(_:)`` naming what does not fit.
    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        guard !body.isEmpty else { throw OperationError.badRequest("the request body is empty; send a JSON \(T.self)") }
        do {
            return try RecordCoder.decodeJSON(T.self, from: body)
        } catch {
            throw OperationError.badRequest("the body is not a valid \(T.self): \(describe(error))")
        }
    }
}

/// A resource at its own path, with a handler per method.
///
/// ```swift
/// builder.resource("/stock/{sku}") { r in
///     r.get { call, context in
///         let sku = call.request.parameters["sku"]!
///         guard let p = try await context.get(products, RecordKey(sku)) else { throw OperationError.notFound("no \(sku)") }
///         return try .json(["sku": sku, "stock": p.stock])
///     }
/// }
/// ```
public struct ResourceBuilder {
    public typealias Handler = @Sendable (ResourceCall, OperationContext) async throws -> ResourceResponse
    var handlers: [String: Handler] = [:]
    var keepsGet = false

    /// Answers `GET` (and `HEAD`) with `handler`.
    ///
    /// With `keep: true` the runtime keeps a `200` response for its request target (path and
    /// query as sent) and answers later requests for it from memory, in the event loop, until a
    /// commit changes something the handler read: each record it read through the store (present
    /// or absent) and each query (by its filter). The handler declares no dependencies. Its
    /// response must depend only on the target and the data it reads: not on headers, cookies
    /// or the time. A response that sets a cookie, or whose handler called a module in another
    /// process or queried through relationships, is not kept. ``OperationContext/live(_:_:render:)``
    /// puts values on a kept page that are filled in each time it is served.
    public mutating func get(keep: Bool = false, _ handler: @escaping Handler) {
        handlers["GET"] = handler
        keepsGet = keep
    }
    public mutating func post(_ handler: @escaping Handler) { handlers["POST"] = handler }
    public mutating func put(_ handler: @escaping Handler) { handlers["PUT"] = handler }
    public mutating func patch(_ handler: @escaping Handler) { handlers["PATCH"] = handler }
    public mutating func delete(_ handler: @escaping Handler) { handlers["DELETE"] = handler }
}

/// A standalone resource as the HTTP layer serves it.
public struct ResourceRoute: Sendable {
    /// The path, with `{name}` parameters: `/stock/{sku}`.
    public let path: String
    /// The module that declared it.
    public let module: String
    /// The handlers by method (`GET`, `POST`, ...).
    public let handlers: [String: ResourceBuilder.Handler]
    /// Whether `GET` responses are kept (``ResourceBuilder/get(keep:_:)``).
    public let keepsGet: Bool

    /// The names reserved for the runtime's own paths; a resource's first segment may not be one.
    public static let reservedSegments: Set<String> = [
        "_operations", "_jobs", "_schedules", "_cache", "_auth", "_users", "_roles", "openapi.json", "health", "ready",
    ]
}

extension ModuleBuilder {
    /// Adds a resource at `path` (`/segment/{parameter}/...`, or `/` for the site's root, which
    /// then replaces the static `index.html`), served by this process when it runs the module
    /// and has the `api` role. Its first segment may not be an exported table or a runtime path.
    public mutating func resource(_ path: String, _ configure: (inout ResourceBuilder) -> Void) {
        let segments = path == "/" ? [] : path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        guard path.hasPrefix("/"), path == "/" || !segments.isEmpty, segments.allSatisfy({ !$0.isEmpty }) else {
            problems.append("resource path '\(path)' of module '\(module)' must look like /name or /name/{parameter}")
            return
        }
        if let first = segments.first, first.hasPrefix("{") || ResourceRoute.reservedSegments.contains(String(first)) {
            problems.append(
                "resource path '\(path)' of module '\(module)' must start with a fixed segment other than \(ResourceRoute.reservedSegments.sorted().joined(separator: ", "))"
            )
            return
        }
        var builder = ResourceBuilder()
        configure(&builder)
        guard !builder.handlers.isEmpty else {
            problems.append("resource '\(path)' of module '\(module)' has no method handlers")
            return
        }
        resources.append(ResourceRoute(path: path, module: module, handlers: builder.handlers, keepsGet: builder.keepsGet))
    }
}
