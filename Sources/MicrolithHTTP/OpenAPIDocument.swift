public import MicrolithJSON
public import MicrolithSchema

/// Builds the OpenAPI 3.1 description of every exported table (`GET /openapi.json`).
public enum OpenAPIDocument {
    /// The document for `schema`.
    public static func make(schema: Schema, title: String = "Microlith", version: String = "1.0.0") -> JSONValue {
        var paths = JSONObject()
        var components = JSONObject()
        components["Problem"] = problemSchema
        for (name, nested) in schema.nestedTypes.sorted(by: { $0.key < $1.key }) {
            components[name] = objectSchema(nested.attributes, sealed: nested.isSealed, schema: schema, requiredOnWrite: true)
        }
        for table in schema.tables {
            components[table.typeName] = objectSchema(table.attributes, sealed: table.isSealed, schema: schema, requiredOnWrite: true)
            guard let export = table.exportName else { continue }
            let ref: JSONValue = ["$ref": .string("#/components/schemas/\(table.typeName)")]
            let pk = table.primaryKeyAttribute
            let idParameter: JSONValue = [
                "name": "id", "in": "path", "required": true,
                "description": .string("The record's \(pk.name) (\(pk.type))"),
                "schema": scalarSchema(pk.type),
            ]
            let queryParameter: JSONValue = [
                "name": "query", "in": "query", "required": false,
                "description": .string(
                    "Harper URL query language: conditions such as attr=value, attr=gt=10&lt=20, a|b, [ ] grouping, "
                        + "select(a,b), sort(+a,-b), limit(n) or limit(start,end)"),
                "schema": ["type": "string"],
                "style": "form", "explode": true,
            ]
            let array: JSONValue = ["type": "array", "items": ref]
            paths["/\(export)/"] = [
                "get": operation(
                    "search\(export)", summary: "Records of \(export) matching a query", parameters: [queryParameter],
                    responses: ["200": response("The matching records", array), "400": problemResponse("Bad query")]),
                "post": operation(
                    "create\(export)", summary: "Create a \(export) with a generated key", parameters: [],
                    body: ref,
                    responses: [
                        "201": response("The record as stored", ref, headers: ["Location", "ETag"]),
                        "400": problemResponse("Invalid record"), "409": problemResponse("The record's key is taken"),
                        "413": problemResponse("Body too large"),
                    ]),
                "delete": operation(
                    "delete\(export)Matching", summary: "Delete the \(export) matching a query, or up to n of them with limit(n)",
                    parameters: [queryParameter],
                    responses: [
                        "200": response("How many records were deleted", ["type": "object", "properties": ["deleted": ["type": "integer"]]]),
                        "400": problemResponse("Bad or missing query, or several matches without limit(n)"),
                    ]),
            ]
            let conditional: [JSONValue] = [
                ["name": "If-Match", "in": "header", "required": false, "schema": ["type": "string"]],
                ["name": "If-None-Match", "in": "header", "required": false, "schema": ["type": "string"]],
            ]
            paths["/\(export)/{id}"] = [
                "get": operation(
                    "get\(export)", summary: "One \(export)", parameters: [idParameter, conditional[1]],
                    responses: [
                        "200": response("The record", ref, headers: ["ETag"]), "304": ["description": "Not modified"],
                        "400": problemResponse("A key the table cannot hold"), "404": problemResponse("No such record"),
                    ]),
                "put": operation(
                    "put\(export)", summary: "Replace or create a \(export)", parameters: [idParameter] + conditional, body: ref,
                    responses: [
                        "200": response("Replaced", ref, headers: ["ETag"]), "201": response("Created", ref, headers: ["ETag", "Location"]),
                        "400": problemResponse("Invalid record"), "412": problemResponse("Precondition failed"),
                    ]),
                "patch": operation(
                    "patch\(export)", summary: "Merge attributes into a \(export) (RFC 7396)", parameters: [idParameter] + conditional,
                    body: ["type": "object"],
                    responses: [
                        "200": response("The merged record", ref, headers: ["ETag"]), "400": problemResponse("Invalid record"),
                        "404": problemResponse("No such record"), "412": problemResponse("Precondition failed"),
                    ]),
                "delete": operation(
                    "delete\(export)", summary: "Delete a \(export)", parameters: [idParameter] + conditional,
                    responses: [
                        "204": ["description": "Deleted"], "400": problemResponse("A key the table cannot hold"),
                        "404": problemResponse("No such record"), "412": problemResponse("Precondition failed"),
                    ]),
            ]
        }
        return [
            "openapi": "3.1.0",
            "info": ["title": .string(title), "version": .string(version)],
            "paths": .object(paths),
            "components": [
                "schemas": .object(components),
                "securitySchemes": [
                    "basicAuth": [
                        "type": "http", "scheme": "basic",
                        "description": "A user of the server (microlith user add); without credentials a request acts as the anonymous role",
                    ],
                    "bearerAuth": [
                        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                        "description": "An access token from POST /_auth/token (or /_auth/refresh); valid for auth.accessTokenSeconds",
                    ],
                ],
            ],
            // Anonymous requests, HTTP Basic or a bearer token: what each may do is the app's roles.yaml.
            "security": [.object([:]), ["basicAuth": .array([])], ["bearerAuth": .array([])]],
        ]
    }

    static let problemSchema: JSONValue = [
        "type": "object",
        "description": "RFC 9457 problem details, with a stable code and the request's X-Request-Id",
        "properties": [
            "type": ["type": "string"], "title": ["type": "string"], "status": ["type": "integer"], "detail": ["type": "string"],
            "code": ["type": "string"], "requestId": ["type": "string"],
        ],
        "required": ["title", "status", "detail", "code"],
    ]

    static func operation(
        _ id: String, summary: String, parameters: [JSONValue], body: JSONValue? = nil, responses: JSONObject
    ) -> JSONValue {
        var o: JSONObject = JSONObject()
        o["operationId"] = .string(id)
        o["summary"] = .string(summary)
        if !parameters.isEmpty { o["parameters"] = .array(parameters) }
        if let body {
            o["requestBody"] = ["required": true, "content": ["application/json": ["schema": body]]]
        }
        var responses = responses
        // What roles.yaml refuses: every table operation may be (see the Roles article).
        if responses["401"] == nil { responses["401"] = problemResponse("No credentials, and the anonymous role may not do this") }
        if responses["403"] == nil { responses["403"] = problemResponse("The user's roles do not allow this") }
        o["responses"] = .object(responses)
        return .object(o)
    }

    static func response(_ description: String, _ schema: JSONValue, headers: [String] = []) -> JSONValue {
        var o = JSONObject()
        o["description"] = .string(description)
        o["content"] = ["application/json": ["schema": schema]]
        if !headers.isEmpty {
            var h = JSONObject()
            for name in headers { h[name] = ["schema": ["type": "string"]] }
            o["headers"] = .object(h)
        }
        return .object(o)
    }

    static func problemResponse(_ description: String) -> JSONValue {
        ["description": .string(description), "content": ["application/problem+json": ["schema": ["$ref": "#/components/schemas/Problem"]]]]
    }

    static func scalarSchema(_ type: AttributeType) -> JSONValue {
        switch type {
        case .id: return ["type": ["string", "integer"]]
        case .string: return ["type": "string"]
        case .int: return ["type": "integer", "format": "int32"]
        case .long: return ["type": "integer", "format": "int64"]
        case .float: return ["type": "number"]
        case .boolean: return ["type": "boolean"]
        case .date: return ["type": "string", "format": "date-time"]
        case .any: return [:]
        case .object(let name): return ["$ref": .string("#/components/schemas/\(name)")]
        case .list(let element): return ["type": "array", "items": scalarSchema(element)]
        }
    }

    static func objectSchema(_ attributes: [AttributeDefinition], sealed: Bool, schema: Schema, requiredOnWrite: Bool) -> JSONValue {
        var properties = JSONObject()
        var required: [JSONValue] = []
        for a in attributes {
            var s = scalarSchema(a.type)
            if a.relationship != nil, case .object(var o) = s {
                o["readOnly"] = true
                o["description"] = .string("Computed from a relationship; select it with select(\(a.name){...})")
                s = .object(o)
            } else if !a.isRequired, !a.isPrimaryKey, a.type != .any, case .object(var o) = s, o["$ref"] == nil, case .string(let t) = o["type"] {
                o["type"] = [.string(t), "null"]
                s = .object(o)
            }
            properties[a.name] = s
            if a.isRequired && !a.isPrimaryKey && !a.isCreatedTime && !a.isUpdatedTime && a.relationship == nil {
                required.append(.string(a.name))
            }
        }
        var o = JSONObject()
        o["type"] = "object"
        o["properties"] = .object(properties)
        if !required.isEmpty { o["required"] = .array(required) }
        o["additionalProperties"] = .bool(!sealed)
        return .object(o)
    }
}
