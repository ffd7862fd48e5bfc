public import Hummingbird
public import Logging
public import MicrolithJSON
import MicrolithSchema
import MicrolithStore

/// Builds the router serving a store over REST, `/openapi.json`, `/health`, `/ready` and static files.
public enum RESTRouter {
    /// The router for `endpoint`; paths that name no exported table fall through to the static
    /// files of ``HTTPConfiguration/webRoot``.
    /// When `servesTables` is false (a process without the `api` role) only `/openapi.json`,
    /// `/health`, `/ready` and static files are routed here.
    /// When `rootIsTaken` (an application resource serves `/`), `/` is left to it.
    /// With `subscriptions`, a `GET` of a table URL asking for `text/event-stream` is a subscription.
    public static func make(
        endpoint: TableEndpoint, openAPI: JSONValue, logger: Logger, servesTables: Bool = true, rootIsTaken: Bool = false,
        subscriptions: SubscriptionEndpoint? = nil
    ) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.middlewares.add(RequestLogMiddleware())
        router.middlewares.add(CORSMiddleware(policy: endpoint.configuration.browserPolicy))
        router.middlewares.add(ProblemMiddleware())
        router.middlewares.add(SecurityHeadersMiddleware())
        if let subscriptions, servesTables { router.middlewares.add(EventStreamMiddleware(subscriptions: subscriptions)) }
        let files = endpoint.configuration.webRoot.flatMap { StaticFiles(folder: $0) }
        if let files { logger.info("serving static files from \(files.root)") }
        let openAPIBytes = ByteBuffer(bytes: JSONWriter.encode(openAPI))
        let exported = servesTables ? endpoint.store.tables.compactMap(\.definition.exportName).sorted() : []

        // Paths no route matches (three segments or more) are static files.
        router.middlewares.add(StaticFallbackMiddleware { request, context in try await staticFile(request, context) })

        @Sendable func staticFile(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
            let notFound = Problem(
                .notFound,
                "no exported table or file at \(request.uri.path); exported tables: \(exported.isEmpty ? "none" : exported.joined(separator: ", "))"
            )
            guard let files, request.method == .get || request.method == .head else { throw notFound }
            return try await files.respond(request, context: context, notFound: notFound)
        }

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

        // /{Table} and /{Table}/: the collection.
        router.on("/{table}", method: .get) { request, context in
            guard let table = endpoint.table(context.parameters.get("table")!) else { return try await staticFile(request, context) }
            return try await endpoint.search(request, context: context, table: table)
        }
        router.on("/{table}", method: .head) { request, context in
            guard let table = endpoint.table(context.parameters.get("table")!) else { return try await staticFile(request, context) }
            return try await endpoint.search(request, context: context, table: table)
        }
        router.on("/{table}", method: .post) { request, context in
            try await endpoint.post(request, context: context, table: try collection(endpoint, context))
        }
        router.on("/{table}", method: .delete) { request, context in
            try await endpoint.deleteMatching(request, context: context, table: try collection(endpoint, context))
        }
        for method in [HTTPRequest.Method.put, .patch] {
            router.on("/{table}", method: method) { request, context -> Response in
                let table = try collection(endpoint, context)
                throw Problem(
                    .methodNotAllowed, "\(method) needs a record id: \(method) /\(table.definition.exportName ?? table.name)/{id}",
                    headers: [.allow: "GET, HEAD, POST, DELETE"])
            }
        }

        // /{Table}/{id}: one record.
        router.on("/{table}/{id}", method: .get) { request, context in
            guard let table = endpoint.table(context.parameters.get("table")!) else { return try await staticFile(request, context) }
            return try await endpoint.get(
                request, context: context, table: table, id: try endpoint.recordID(context.parameters.get("id")!, table: table))
        }
        router.on("/{table}/{id}", method: .head) { request, context in
            guard let table = endpoint.table(context.parameters.get("table")!) else { return try await staticFile(request, context) }
            return try await endpoint.get(
                request, context: context, table: table, id: try endpoint.recordID(context.parameters.get("id")!, table: table))
        }
        router.on("/{table}/{id}", method: .put) { request, context in
            let (table, id) = try record(endpoint, context)
            return try await endpoint.put(request, context: context, table: table, id: id)
        }
        router.on("/{table}/{id}", method: .patch) { request, context in
            let (table, id) = try record(endpoint, context)
            return try await endpoint.patch(request, context: context, table: table, id: id)
        }
        router.on("/{table}/{id}", method: .delete) { request, context in
            let (table, id) = try record(endpoint, context)
            return try await endpoint.delete(request, context: context, table: table, id: id)
        }
        router.on("/{table}/{id}", method: .post) { request, context -> Response in
            let (table, _) = try record(endpoint, context)
            throw Problem(
                .methodNotAllowed, "POST creates records on the collection: POST /\(table.definition.exportName ?? table.name)/",
                headers: [.allow: "GET, HEAD, PUT, PATCH, DELETE"])
        }
        // OPTIONS answers with the methods a path takes; TRACE is refused.
        for (path, allow) in [("/{table}", "GET, HEAD, POST, DELETE, OPTIONS"), ("/{table}/{id}", "GET, HEAD, PUT, PATCH, DELETE, OPTIONS")] {
            router.on(RouterPath(path), method: .options) { request, context in
                guard endpoint.table(context.parameters.get("table")!) != nil else { return try await staticFile(request, context) }
                return Response(status: .noContent, headers: [.allow: allow])
            }
            router.on(RouterPath(path), method: .trace) { request, context -> Response in
                guard endpoint.table(context.parameters.get("table")!) != nil else { return try await staticFile(request, context) }
                throw Problem(.methodNotAllowed, "TRACE is not supported; this path takes \(allow)", headers: [.allow: allow])
            }
        }
        return router
    }

    static func collection(_ endpoint: TableEndpoint, _ context: BasicRequestContext) throws -> TableLayout {
        let name = context.parameters.get("table")!
        guard let table = endpoint.table(name) else { throw unknownTable(endpoint, name) }
        return table
    }

    static func record(_ endpoint: TableEndpoint, _ context: BasicRequestContext) throws -> (TableLayout, RecordID) {
        let table = try collection(endpoint, context)
        return (table, try endpoint.recordID(context.parameters.get("id")!, table: table))
    }

    static func unknownTable(_ endpoint: TableEndpoint, _ name: String) -> Problem {
        let exported = endpoint.store.tables.compactMap(\.definition.exportName).sorted()
        return Problem(
            .notFound, "no exported table named '\(name)'; exported tables: \(exported.isEmpty ? "none" : exported.joined(separator: ", "))")
    }
}
