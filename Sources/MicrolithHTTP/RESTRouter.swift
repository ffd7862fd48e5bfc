public import Hummingbird
public import Logging
public import MicrolithAuth
public import MicrolithJSON
import MicrolithSchema
import MicrolithStore
import MicrolithTables

/// Builds the router serving a store over REST, `/openapi.json`, `/health`, `/ready` and static files.
public enum RESTRouter {
    /// The router for `endpoint`; paths that name no exported table fall through to the static
    /// files of ``HTTPConfiguration/webRoot``.
    /// When `servesTables` is false (a process without the `api` role) only `/openapi.json`,
    /// `/health`, `/ready` and static files are routed here.
    /// When `rootIsTaken` (an application resource serves `/`), `/` is left to it.
    /// With `subscriptions`, a `GET` of a table URL asking for `text/event-stream` is a subscription.
    /// With `authenticator`, requests with credentials are served as the user they name.
    /// With `replication`, a write with `X-Replicate-To` waits for other nodes (``ReplicateToMiddleware``).
    /// With `recorder`, every request the router answers is reported to it (``RequestMetricsMiddleware``).
    /// With `tracing`, each request is a trace span (Hummingbird's `TracingMiddleware`).
    public static func make(
        endpoint: TableEndpoint, openAPI: JSONValue, logger: Logger, servesTables: Bool = true, rootIsTaken: Bool = false,
        subscriptions: SubscriptionEndpoint? = nil, authenticator: Authenticator? = nil, replication: ReplicationWaiter? = nil,
        recorder: (any RequestRecorder)? = nil, tracing: Bool = false
    ) -> Router<MicrolithRequestContext> {
        let router = Router(context: MicrolithRequestContext.self)
        if let recorder { router.middlewares.add(RequestMetricsMiddleware(recorder: recorder, directory: servesTables ? endpoint.directory : nil)) }
        // A span per request (the query string's values are not recorded: they may hold tokens).
        if tracing { router.middlewares.add(TracingMiddleware(redactingQueryParameters: ["access_token"])) }
        router.middlewares.add(RequestLogMiddleware())
        router.middlewares.add(CORSMiddleware(policy: endpoint.configuration.browserPolicy))
        router.middlewares.add(ProblemMiddleware())
        router.middlewares.add(SecurityHeadersMiddleware(secure: endpoint.configuration.secure))
        if let authenticator {
            router.middlewares.add(AuthenticationMiddleware(authenticator: authenticator, clientAddress: endpoint.configuration.clientAddress))
        }
        if let replication { router.middlewares.add(ReplicateToMiddleware(waiter: replication)) }
        if let subscriptions, servesTables { router.middlewares.add(EventStreamMiddleware(subscriptions: subscriptions)) }
        let files = endpoint.configuration.webRoot.flatMap { StaticFiles(folder: $0) }
        if let files { logger.info("serving static files from \(files.root)") }
        let openAPIBytes = ByteBuffer(bytes: JSONWriter.encode(openAPI))
        let exported = servesTables ? endpoint.store.tables.compactMap(\.definition.exportName).sorted() : []

        @Sendable func staticFile(_ request: Request, _ context: MicrolithRequestContext) async throws -> Response {
            let notFound = Problem(
                .notFound,
                "no exported table or file at \(request.uri.path); exported tables: \(exported.isEmpty ? "none" : exported.joined(separator: ", "))"
            )
            guard let files, request.method == .get || request.method == .head else { throw notFound }
            return try await files.respond(request, context: context, notFound: notFound)
        }

        // Table URLs: /{Table}, /{Table}/, /{Table}/?query, /{Table}/{id} and /{Table}/{prefix}/, read
        // once by the table directory (the grammar every door shares) from the path as sent. Keys
        // may hold `/`, so longer paths whose first segment names a table come here from the static
        // fallback too.
        @Sendable func serveTable(_ request: Request, _ context: MicrolithRequestContext) async throws -> Response {
            // `Result(catching:)` rather than `do`/`catch let e as TableTargetError where …`: that
            // typed catch crashes the Swift 6.3.1 compiler ("Found ownership error").
            switch Result(catching: { () throws(TableTargetError) in
                try endpoint.directory.target(path: request.uri.path, query: request.uri.query.map { Substring($0) })
            }) {
            case .success(let target):
                return try await table(target, request, context)
            case .failure(let error):
                let readsFiles = [HTTPRequest.Method.get, .head, .options, .trace].contains(request.method)
                if readsFiles, error.kind == .unknownTable || error.kind == .noTable { return try await staticFile(request, context) }
                throw error
            }
        }

        @Sendable func table(_ target: TableTarget, _ request: Request, _ context: MicrolithRequestContext) async throws -> Response {
            let method = request.method
            let table = target.table
            switch target.selection {
            case .collection:
                let allow = "GET, HEAD, POST, DELETE, OPTIONS"
                switch method {
                case .get, .head: return try await endpoint.search(request, context: context, table: table)
                case .post: return try await endpoint.post(request, context: context, table: table)
                case .delete: return try await endpoint.deleteMatching(request, context: context, table: table)
                case .put, .patch:
                    throw Problem(.methodNotAllowed, "\(method) needs a record id: \(method) /\(target.name)/{id}", headers: [.allow: allow])
                case .options: return Response(status: .noContent, headers: [.allow: allow])
                default: throw notAllowed(method, allow)
                }
            case .record(let id):
                let allow = "GET, HEAD, PUT, PATCH, DELETE, OPTIONS"
                switch method {
                case .get, .head: return try await endpoint.get(request, context: context, table: table, id: id)
                case .put: return try await endpoint.put(request, context: context, table: table, id: id)
                case .patch: return try await endpoint.patch(request, context: context, table: table, id: id)
                case .delete: return try await endpoint.delete(request, context: context, table: table, id: id)
                case .post:
                    throw Problem(
                        .methodNotAllowed, "POST creates records on the collection: POST /\(target.name)/", headers: [.allow: allow])
                case .options: return Response(status: .noContent, headers: [.allow: allow])
                default: throw notAllowed(method, allow)
                }
            case .prefix(let prefix):
                let allow = "GET, HEAD, OPTIONS"
                switch method {
                case .get, .head: return try await endpoint.searchPrefix(request, context: context, table: table, prefix: prefix)
                case .options: return Response(status: .noContent, headers: [.allow: allow])
                case .trace: throw notAllowed(method, allow)
                default:
                    throw Problem(
                        .methodNotAllowed,
                        "\(target.path) ends with '/': it names the records whose key starts with '\(prefix)', which are read, "
                            + "not written; write one record at /\(target.name)/{id} (a '/' inside a key is written %2F)",
                        headers: [.allow: allow])
                }
            }
        }

        // Paths no route matches (three segments or more) are table URLs when their first segment
        // names an exported table, else static files.
        router.middlewares.add(
            StaticFallbackMiddleware { request, context in
                if servesTables, endpoint.directory.table(inPath: request.uri.path) != nil { return try await serveTable(request, context) }
                return try await staticFile(request, context)
            })

        router.get("/openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: openAPIBytes))
        }
        // Ready: every database answers a read and takes writes (see Store.checkReady).
        // Not ready: a 503 problem naming the database; the cause (SQLite's words) goes to the log.
        router.get("/ready") { _, context -> Response in
            do {
                try await endpoint.store.checkReady()
            } catch {
                let message = (error as? StoreError)?.message ?? "the store does not answer"
                var problem = Problem(
                    .serviceUnavailable, "not ready: \(message)", code: "notReady", headers: [.retryAfter: Problem.retryAfterSeconds])
                problem.requestID = context.id
                context.logger.warning(
                    "not ready",
                    metadata: [
                        "error": "\(message); cause: \(String(reflecting: (error as? StoreError)?.underlying ?? error))",
                        "requestId": "\(context.id)",
                    ])
                return problem.makeResponse()
            }
            return Response(
                status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: "{\"status\":\"ready\"}"))
            )
        }
        router.get("/health") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: "{\"status\":\"ok\"}")))
        }
        if !rootIsTaken {
            router.get("/") { request, context in try await staticFile(request, context) }
            router.head("/") { request, context in try await staticFile(request, context) }
        }
        guard servesTables else { return router }

        for method: HTTPRequest.Method in [.get, .head, .post, .put, .patch, .delete, .options, .trace] {
            router.on("/{table}", method: method) { request, context in try await serveTable(request, context) }
            router.on("/{table}/{id}", method: method) { request, context in try await serveTable(request, context) }
        }
        return router
    }

    static func notAllowed(_ method: HTTPRequest.Method, _ allow: String) -> Problem {
        method == .trace
            ? Problem(.methodNotAllowed, "TRACE is not supported; this path takes \(allow)", headers: [.allow: allow])
            : Problem(.methodNotAllowed, "\(method) is not supported here; this path takes \(allow)", headers: [.allow: allow])
    }
}
