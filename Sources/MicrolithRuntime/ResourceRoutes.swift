import Foundation
import HTTPTypes
import Hummingbird
import MicrolithHTTP
import MicrolithJSON
import MicrolithModules
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

    static func add(to router: Router<BasicRequestContext>, modules: Modules, maximumBodyBytes: Int) {
        for route in modules.resources {
            let allow = (Set(route.handlers.keys).union(route.handlers["GET"] == nil ? [] : ["HEAD"]).sorted() + ["OPTIONS"]).joined(separator: ", ")
            let parameterNames = route.path.split(separator: "/").filter { $0.hasPrefix("{") && $0.hasSuffix("}") }.map {
                String($0.dropFirst().dropLast())
            }
            for (method, handler) in route.handlers {
                let serve: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, context in
                    let buffer = try await TableEndpoint.body(request, limit: maximumBodyBytes)
                    var info = TableEndpoint.resourceRequest(request, context)
                    for name in parameterNames {
                        if let value = context.parameters.get(name) { info.parameters[name] = try parameter(name, value) }
                    }
                    let call = ResourceCall(request: info, body: Data(buffer.readableBytesView))
                    let ctx = OperationContext(modules: modules, operation: "\(method) \(route.path)", logger: context.logger)
                    let answer = try await handler(call, ctx)
                    var headers = HTTPFields()
                    for (name, value) in answer.headers {
                        if let field = HTTPField.Name(name) { headers[field] = value }
                    }
                    if request.method == .head {
                        headers[.contentLength] = String(answer.body.count)
                        return Response(status: HTTPResponse.Status(code: answer.status), headers: headers)
                    }
                    return Response(
                        status: HTTPResponse.Status(code: answer.status), headers: headers,
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: answer.body)))
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
