import Foundation
import HTTPTypes
import Hummingbird
import MicrolithHTTP
import MicrolithJSON
import MicrolithModules
import MicrolithTables
import NIOCore

/// Serves the operations of the modules running here at `POST /_operations/{module}/{operation}`
/// (JSON in, JSON out; errors as problem+json carrying the ``OperationError`` code) and
/// describes them in `/openapi.json`.
enum OperationRoutes {
    static func add(to router: Router<MicrolithRequestContext>, modules: Modules, access: TableAccess, maximumBodyBytes: Int) {
        router.post("\(OperationPath.prefix)/{module}/{operation}") { request, context -> Response in
            let module = context.parameters.get("module")!
            let operation = context.parameters.get("operation")!
            // What the operation declared it needs (an unknown one is answered 404 below).
            if let permission = modules.permission(module: module, operation: operation) {
                try access.authorize(permission, to: "call \(module).\(operation)", for: Principal.current)
            }
            try TableEndpoint.requireJSON(request)
            let buffer = try await TableEndpoint.body(request, limit: maximumBodyBytes)
            let input = buffer.readableBytes == 0 ? Data("{}".utf8) : Data(buffer.readableBytesView)
            // An OperationError becomes problem+json with its `code` (ProblemMiddleware); RemoteModule reads it back.
            let output = try await modules.callJSON(module: module, operation: operation, body: input, logger: context.logger)
            return Response(
                status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: output)))
        }
    }

    /// Adds a `POST` path per local operation to an OpenAPI document.
    static func document(_ modules: Modules, in document: inout JSONValue) {
        guard case .object(var root) = document, case .object(var paths)? = root["paths"] else { return }
        for op in modules.localOperations {
            let problem: JSONValue = ["$ref": "#/components/schemas/Problem"]
            let failure: (String) -> JSONValue = { description in
                ["description": .string(description), "content": ["application/problem+json": ["schema": problem]]]
            }
            var responses: JSONObject = [
                "200": [
                    "description": .string("A JSON-encoded \(op.output)"),
                    "content": ["application/json": ["schema": [:]]],
                ],
                "400": failure("The body is not a valid \(op.input), or the operation refused it"),
                "default": failure("The operation failed; `code` says how"),
            ]
            var post: JSONObject = [
                "operationId": .string("\(op.module)_\(op.operation)"),
                "tags": [.string(op.module)],
                "summary": .string("Operation \(op.operation) of module \(op.module) (\(op.input) → \(op.output))"),
                "requestBody": [
                    "required": true,
                    "description": .string("A JSON-encoded \(op.input)"),
                    "content": ["application/json": ["schema": ["type": "object"]]],
                ],
            ]
            if op.permission != .anyone {
                post["description"] = .string("Requires \(op.permission).")
                post["security"] = [["basicAuth": []], ["bearerAuth": []]]
                responses["401"] = failure("No credentials, or wrong ones")
                responses["403"] = failure("The signed-in user lacks \(op.permission)")
            }
            post["responses"] = .object(responses)
            paths[OperationPath.make(module: op.module, operation: op.operation)] = ["post": .object(post)]
        }
        root["paths"] = .object(paths)
        document = .object(root)
    }
}
