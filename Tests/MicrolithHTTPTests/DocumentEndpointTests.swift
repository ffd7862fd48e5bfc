import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MicrolithHTTP
import MicrolithJSON
import MicrolithSchema
import MicrolithStore
import NIOCore
import Testing

/// Every `$ref` value anywhere in `value`.
private func references(in value: JSONValue) -> [String] {
    switch value {
    case .object(let object):
        return object.members.flatMap { key, member -> [String] in
            if key == "$ref", case .string(let ref) = member { return [ref] }
            return references(in: member)
        }
    case .array(let elements):
        return elements.flatMap(references(in:))
    default:
        return []
    }
}

@Suite("REST: /openapi.json, /health and /ready")
struct DocumentEndpointTests {
    @Test func healthAnswersOK() async throws {
        try await withREST { client, _ in
            let response = try await client.execute(uri: "/health", method: .get)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "application/json")
            #expect(response.json() == ["status": "ok"])
        }
    }

    @Test func readyWhileTheStoreIsOpenNotAfter() async throws {
        try await withREST { client, store in
            let ready = try await client.execute(uri: "/ready", method: .get)
            #expect(ready.status == .ok)
            #expect(ready.json() == ["status": "ready"])
            store.close()
            let closed = try await client.execute(uri: "/ready", method: .get)
            closed.expectProblem(.serviceUnavailable)
            #expect(closed.text.contains("the store is closed"))
        }
    }

    @Test func openAPIDescribesEveryExportedTable() async throws {
        try await withREST { client, _ in
            let response = try await client.execute(uri: "/openapi.json", method: .get)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "application/json")
            let document = response.json()
            #expect(document["openapi"] == "3.1.0")
            #expect(document["info"]?["title"] == "Microlith")
            #expect(document["info"]?["version"]?.stringValue != nil)

            let paths = try #require(document["paths"]?.objectValue)
            #expect(Set(paths.keys) == ["/Todo/", "/Todo/{id}", "/counters/", "/counters/{id}"])
            #expect(Set(try #require(paths["/Todo/"]?.objectValue).keys) == ["get", "post", "delete"])
            #expect(Set(try #require(paths["/Todo/{id}"]?.objectValue).keys) == ["get", "put", "patch", "delete"])
            let operationIDs = paths.values.flatMap { $0.objectValue?.values.compactMap { $0["operationId"]?.stringValue } ?? [] }
            #expect(operationIDs.count == 14)
            #expect(Set(operationIDs).count == operationIDs.count, "operation ids are unique")

            let put = try #require(paths["/Todo/{id}"]?["put"])
            #expect(put["responses"]?["201"] != nil)
            #expect(put["responses"]?["412"]?["content"]?["application/problem+json"] != nil)
            #expect(put["requestBody"]?["content"]?["application/json"]?["schema"] == ["$ref": "#/components/schemas/Todo"])
            let idParameter = put["parameters"]?.arrayValue?.first
            #expect(idParameter?["in"] == "path")
            #expect(idParameter?["schema"] == ["type": ["string", "integer"]])
            let counterID = paths["/counters/{id}"]?["get"]?["parameters"]?.arrayValue?.first
            #expect(counterID?["schema"] == ["type": "integer", "format": "int32"])

            let schemas = try #require(document["components"]?["schemas"]?.objectValue)
            #expect(Set(schemas.keys).isSuperset(of: ["Todo", "Counter", "Problem"]))
            let todo = try #require(schemas["Todo"])
            #expect(todo["type"] == "object")
            #expect(todo["required"] == ["title"])
            #expect(todo["additionalProperties"] == true)
            #expect(todo["properties"]?["title"] == ["type": "string"])
            #expect(todo["properties"]?["priority"] == ["type": ["integer", "null"], "format": "int32"])
            #expect(todo["properties"]?["tags"]?["items"] == ["type": "string"])
            #expect(schemas["Problem"]?["required"] == ["title", "status", "detail", "code"])

            for ref in references(in: document) {
                let prefix = "#/components/schemas/"
                #expect(ref.hasPrefix(prefix), "\(ref)")
                #expect(schemas[String(ref.dropFirst(prefix.count))] != nil, "dangling \(ref)")
            }
        }
    }

    @Test func openAPIMatchesTheDocumentBuiltFromTheSchema() async throws {
        try await withREST { client, store in
            let served = try await client.execute(uri: "/openapi.json", method: .get).json()
            #expect(served == OpenAPIDocument.make(schema: store.schema))
        }
    }

    @Test func sealedTablesRefuseAdditionalProperties() throws {
        let schema = try SchemaParser.parse(
            """
            type Item @table @export @sealed {
                id: Long @primaryKey
                name: String!
                at: Date
            }
            """, file: "schema.graphql")
        let document = OpenAPIDocument.make(schema: schema, title: "Shop", version: "2.0.0")
        #expect(document["info"] == ["title": "Shop", "version": "2.0.0"])
        let item = document["components"]?["schemas"]?["Item"]
        #expect(item?["additionalProperties"] == false)
        #expect(item?["properties"]?["at"] == ["type": ["string", "null"], "format": "date-time"])
        #expect(item?["required"] == ["name"])
    }
}
