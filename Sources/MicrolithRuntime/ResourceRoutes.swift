import Foundation
import HTTPTypes
import Hummingbird
import MicrolithCache
import MicrolithHTTP
import MicrolithJSON
import MicrolithModules
import MicrolithStore
import MicrolithTables
import NIOCore

/// Serves the standalone resources of the modules running here, each method at its path.
enum ResourceRoutes {
    /// Refuses resources whose first segment is an exported table (the table would win).
    static func check(_ modules: Modules, exportedTables: Set<String>) throws {
        for r in modules.resources {
            let first = r.path.split(separator: "/").first.map(String.init) ?? ""
            if exportedTables.contains(first) {
                throw RuntimeError("resource \(r.path) of module '\(r.module)' starts with /\(first), which is an exported table; pick another path")
            }
        }
    }

    /// A path parameter, percent-decoded once and strictly (as record keys are).
    static func parameter(_ name: String, _ value: String) throws(Problem) -> String {
        do {
            return try PathSegment.decode(value)
        } catch {
            throw Problem(.badRequest, "path parameter '\(name)' has \(error.description)", extensions: ["code": "badPath"])
        }
    }

    static func add(
        to router: Router<MicrolithRequestContext>, modules: Modules, access: TableAccess, maximumBodyBytes: Int, secure: Bool = false
    ) {
        if let kept = modules.keptResponses { addStatistics(to: router, kept: kept, access: access) }
        for route in modules.resources {
            let allow = (Set(route.handlers.keys).union(route.handlers["GET"] == nil ? [] : ["HEAD"]).sorted() + ["OPTIONS"]).joined(separator: ", ")
            let parameterNames = route.path.split(separator: "/").filter { $0.hasPrefix("{") && $0.hasSuffix("}") }.map {
                String($0.dropFirst().dropLast())
            }
            for (method, handler) in route.handlers {
                let serve: @Sendable (Request, MicrolithRequestContext) async throws -> Response = { request, context in
                    let buffer = try await TableEndpoint.body(request, limit: maximumBodyBytes)
                    var info = TableEndpoint.resourceRequest(request, context)
                    for name in parameterNames {
                        if let value = context.parameters.get(name) { info.parameters[name] = try parameter(name, value) }
                    }
                    let call = ResourceCall(request: info, body: Data(buffer.readableBytesView))
                    let ctx = OperationContext(modules: modules, operation: "\(method) \(route.path)", logger: context.logger)
                    if method == "GET", route.keepsGet, let kept = modules.keptResponses {
                        return try await keeping(request, call, ctx, handler, kept, secure: secure)
                    }
                    let answer = try await handler(call, ctx)
                    var headers = HTTPFields()
                    for (name, value) in answer.headers {
                        if let field = HTTPField.Name(name) { headers[field] = value }
                    }
                    return response(request, status: answer.status, headers: headers, body: ByteBuffer(bytes: answer.body))
                }
                router.on(RouterPath(route.path), method: HTTPRequest.Method(method)!, use: serve)
                if method == "GET" { router.on(RouterPath(route.path), method: .head, use: serve) }
            }
            router.on(RouterPath(route.path), method: .options) { _, _ in Response(status: .noContent, headers: [.allow: allow]) }
            for method in ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"] where route.handlers[method] == nil {
                if method == "HEAD" && route.handlers["GET"] != nil { continue }
                router.on(RouterPath(route.path), method: HTTPRequest.Method(method)!) { _, _ -> Response in
                    throw Problem(.methodNotAllowed, "\(route.path) takes \(allow)", headers: [.allow: allow])
                }
            }
        }
    }
}

extension ResourceRoutes {
    /// Runs a `get(keep: true)` handler with its reads recorded, keeps a `200` answer without
    /// cookies for the request target, and answers (`X-Cache: miss`; kept ones say `hit`).
    static func keeping(
        _ request: Request, _ call: ResourceCall, _ context: OperationContext, _ handler: ResourceBuilder.Handler, _ kept: KeptResponses,
        secure: Bool = false
    ) async throws -> Response {
        let target = request.head.path ?? call.request.path
        // Most hits are answered in the event loop; one pipelined behind a routed request lands here.
        if let hit = kept.response(for: target) { return response(request, hit) }
        let recording = kept.begin()
        let answer: ResourceResponse
        do {
            answer = try await ReadObservation.$observer.withValue(recording) { try await handler(call, context) }
        } catch {
            kept.abandon(recording)
            throw error
        }
        let headers = answer.headers.sorted { $0.key < $1.key }.map { (name: $0.key, value: $0.value) }
        var built = CachedResponse(status: answer.status, headers: headers, body: ByteBuffer(bytes: answer.body))
        if answer.status == 200, !answer.headers.keys.contains(where: { $0.lowercased() == "set-cookie" }) {
            var keptHeaders = built
            keptHeaders.headers.append((name: "X-Cache", value: "hit"))
            // Hits are answered ahead of the router's middleware: they carry a page's headers themselves.
            keptHeaders.headers = SecurityHeaders.adding(to: keptHeaders.headers, secure: secure)
            kept.keep(keptHeaders, for: target, recording: recording)
        } else {
            kept.abandon(recording)
        }
        built = try await kept.filled(built, recording: recording)
        built.headers.append((name: "X-Cache", value: "miss"))
        return response(request, built)
    }

    static func response(_ request: Request, _ answer: CachedResponse) -> Response {
        var headers = HTTPFields()
        for (name, value) in answer.headers {
            if let field = HTTPField.Name(name) { headers.append(HTTPField(name: field, value: value)) }
        }
        return response(request, status: answer.status, headers: headers, body: answer.body)
    }

    static func response(_ request: Request, status: Int, headers: HTTPFields, body: ByteBuffer) -> Response {
        var headers = headers
        if request.method == .head {
            headers[.contentLength] = String(body.readableBytes)
            return Response(status: HTTPResponse.Status(code: status), headers: headers)
        }
        return Response(status: HTTPResponse.Status(code: status), headers: headers, body: ResponseBody(byteBuffer: body))
    }

    /// `GET /_cache`: the kept-response counters, for a super user.
    static func addStatistics(to router: Router<MicrolithRequestContext>, kept: KeptResponses, access: TableAccess) {
        router.get("/_cache") { _, _ in
            try access.authorize(.superUser, to: "read the cache counters", for: Principal.current)
            let s = kept.statistics
            let lookups = s.hits + s.misses
            let body: JSONValue = [
                "entries": .int(Int64(s.entries)), "bytes": .int(Int64(s.bytes)), "limitBytes": .int(Int64(kept.limitBytes)),
                "hits": .int(Int64(s.hits)), "misses": .int(Int64(s.misses)),
                "hitRatio": .double(lookups == 0 ? 0 : Double(s.hits) / Double(lookups)), "kept": .int(Int64(s.kept)),
                "refusedStale": .int(Int64(s.refusedStale)), "refusedUntracked": .int(Int64(s.refusedUntracked)),
                "invalidations": .int(Int64(s.invalidations)), "evictions": .int(Int64(s.evictions)),
            ]
            return Response(
                status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: JSONWriter.encode(body))))
        }
    }

    /// Adds each resource's methods to an OpenAPI document.
    static func document(_ modules: Modules, in document: inout JSONValue) {
        guard case .object(var root) = document, case .object(var paths)? = root["paths"] else { return }
        for route in modules.resources {
            var item = JSONObject()
            let parameters: [JSONValue] = route.path.split(separator: "/").filter { $0.hasPrefix("{") }.map {
                ["name": .string(String($0.dropFirst().dropLast())), "in": "path", "required": true, "schema": ["type": "string"]]
            }
            for method in route.handlers.keys.sorted() {
                item[method.lowercased()] = [
                    "operationId": .string("\(route.module)_\(method.lowercased())_\(route.path.filter { $0.isLetter || $0.isNumber })"),
                    "tags": [.string(route.module)],
                    "summary": .string("Resource \(route.path) of module \(route.module)"),
                    "parameters": .array(parameters),
                    "responses": [
                        "default": ["description": "What the resource answers; errors as application/problem+json"]
                    ],
                ]
            }
            paths[route.path] = .object(item)
        }
        root["paths"] = .object(paths)
        document = .object(root)
    }
}
