import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MicrolithHTTP
import MicrolithJSON
import NIOCore
import Testing

/// Three to-dos: t1 (priority 1, not done, tags x), t2 (priority 3, done, tags x y), t3 (priority 2, done, notes).
private func seedTodos(_ client: any TestClientProtocol) async throws {
    try await put(client, "/Todo/t1", #"{"title":"a","priority":1,"done":false,"tags":["x"]}"#)
    try await put(client, "/Todo/t2", #"{"title":"b","priority":3,"done":true,"tags":["x","y"]}"#)
    try await put(client, "/Todo/t3", #"{"title":"c","priority":2,"done":true,"notes":"n"}"#)
}

/// The `id` of every record of a JSON array response.
private func ids(_ response: TestResponse, sourceLocation: Testing.SourceLocation = #_sourceLocation) -> [String] {
    guard let array = response.json(sourceLocation: sourceLocation).arrayValue else {
        Issue.record("not a JSON array: \(response.text)", sourceLocation: sourceLocation)
        return []
    }
    return array.map { $0["id"]?.stringValue ?? "?" }
}

@Suite("REST: collections and queries")
struct CollectionEndpointTests {
    @Test func listingReturnsEveryRecordInKeyOrder() async throws {
        try await withREST { client, _ in
            let empty = try await client.execute(uri: "/Todo/", method: .get)
            #expect(empty.status == .ok)
            #expect(empty.text == "[]")
            try await seedTodos(client)
            let response = try await client.execute(uri: "/Todo/", method: .get)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "application/json")
            #expect(ids(response) == ["t1", "t2", "t3"])
            #expect(ids(try await client.execute(uri: "/Todo", method: .get)) == ["t1", "t2", "t3"])
        }
    }

    @Test func indexedQueriesAreAnsweredThroughIndexes() async throws {
        try await withREST { client, _ in
            try await seedTodos(client)
            let response = try await client.execute(uri: "/Todo/?done==true&sort(-priority)", method: .get)
            #expect(ids(response) == ["t2", "t3"])
            let timing = try #require(response.headers[.serverTiming])
            #expect(timing.contains("index"), "\(timing)")
            #expect(timing.contains("sql-sort"), "\(timing)")
            #expect(response.headers[.warning] == nil)

            #expect(ids(try await client.execute(uri: "/Todo/?tags==y", method: .get)) == ["t2"])
            #expect(ids(try await client.execute(uri: "/Todo/?priority=gt=1&lt=3", method: .get)) == ["t3"])
            #expect(ids(try await client.execute(uri: "/Todo/?[done==false|priority==3]", method: .get)) == ["t1", "t2"])
        }
    }

    @Test func unindexedQueriesAreFlaggedAsFullScans() async throws {
        try await withREST { client, _ in
            try await seedTodos(client)
            let response = try await client.execute(uri: "/Todo/?notes==n", method: .get)
            #expect(ids(response) == ["t3"])
            #expect(response.headers[.warning]?.contains("full scan") == true)
            #expect(response.headers[.serverTiming]?.contains("full-scan") == true)
        }
    }

    @Test func selectSortAndLimit() async throws {
        try await withREST { client, _ in
            try await seedTodos(client)
            let selected = try await client.execute(uri: "/Todo/?priority=ge=2&select(title,priority)", method: .get)
            #expect(selected.json() == [["title": "b", "priority": 3], ["title": "c", "priority": 2]])
            #expect(selected.text == #"[{"title":"b","priority":3},{"title":"c","priority":2}]"#)

            let page = try await client.execute(uri: "/Todo/?sort(+priority)&limit(1,3)", method: .get)
            #expect(ids(page) == ["t3", "t2"])
            #expect(ids(try await client.execute(uri: "/Todo/?sort(title)&limit(1)", method: .get)) == ["t1"])
        }
    }

    @Test func headOfACollectionHasNoBody() async throws {
        try await withREST { client, _ in
            try await seedTodos(client)
            let response = try await client.execute(uri: "/Todo/?done==true", method: .head)
            #expect(response.status == .ok)
            #expect(response.body.readableBytes == 0)
            #expect(response.headers[.contentType] == "application/json")
        }
    }

    @Test func malformedQueriesAre400WithTheOffset() async throws {
        try await withREST { client, _ in
            let syntax = try await client.execute(uri: "/Todo/?done=zz=1", method: .get)
            let problem = syntax.expectProblem(.badRequest)
            #expect(problem["title"] == "Bad query")
            #expect(problem["offset"] == 4)
            #expect(problem["detail"]?.stringValue?.contains("=zz=") == true)

            let value = try await client.execute(uri: "/Todo/?priority=gt=abc", method: .get)
            let valueProblem = value.expectProblem(.badRequest)
            #expect(valueProblem["detail"]?.stringValue?.contains("'abc'") == true)
            #expect(valueProblem["detail"]?.stringValue?.contains("priority") == true)
        }
    }

    @Test func fullScansCanBeDisabled() async throws {
        try await withREST(HTTPConfiguration(allowFullScans: false)) { client, _ in
            try await seedTodos(client)
            let refused = try await client.execute(uri: "/Todo/?notes==n", method: .get)
            let problem = refused.expectProblem(.badRequest)
            #expect(problem["detail"]?.stringValue?.contains("full scan") == true)
            #expect(ids(try await client.execute(uri: "/Todo/?priority==2", method: .get)) == ["t3"])
        }
    }

    @Test func aTestForNullOnASparseIndexIsAFullScanAndTheRefusalSaysWhy() async throws {
        let sparse = httpSchemaText.replacingOccurrences(of: "priority: Int @indexed", with: "priority: Int @indexed(sparse: true)")
        try await withREST(HTTPConfiguration(allowFullScans: false), schema: sparse) { client, _ in
            try await seedTodos(client)
            try await put(client, "/Todo/t4", #"{"title":"d"}"#)
            let refused = try await client.execute(uri: "/Todo/?priority=null", method: .get)
            let detail = refused.expectProblem(.badRequest)["detail"]?.stringValue ?? ""
            #expect(detail.contains("full scan") && detail.contains("'priority'") && detail.contains("sparse"), "\(detail)")
            // Comparisons with a value use the sparse index; a whole index serves a test for null.
            #expect(ids(try await client.execute(uri: "/Todo/?priority=gt=1&sort(+priority)", method: .get)) == ["t3", "t2"])
            #expect(ids(try await client.execute(uri: "/Todo/?done=null", method: .get)) == ["t4"])
        }
        try await withREST(schema: sparse) { client, _ in
            try await seedTodos(client)
            try await put(client, "/Todo/t4", #"{"title":"d"}"#)
            let scanned = try await client.execute(uri: "/Todo/?priority=null", method: .get)
            #expect(ids(scanned) == ["t4"])
            #expect(scanned.headers[HTTPField.Name("Warning")!]?.contains("full scan") == true)
            let sorted = try await client.execute(uri: "/Todo/?sort(+priority)&limit(4)", method: .get)
            #expect(ids(sorted) == ["t4", "t1", "t3", "t2"], "the record without a priority sorts first, as with a whole index")
        }
    }

    @Test func resultCountIsLimited() async throws {
        try await withREST(HTTPConfiguration(maximumResults: 2)) { client, _ in
            try await seedTodos(client)
            let tooMany = try await client.execute(uri: "/Todo/", method: .get)
            #expect(tooMany.expectProblem(.badRequest)["detail"]?.stringValue?.contains("more than 2") == true)
            let bigLimit = try await client.execute(uri: "/Todo/?limit(3)", method: .get)
            bigLimit.expectProblem(.badRequest)
            #expect(ids(try await client.execute(uri: "/Todo/?limit(2)", method: .get)) == ["t1", "t2"])
        }
    }

    @Test func deleteByQueryRemovesTheOneMatchingRecord() async throws {
        try await withREST { client, _ in
            try await seedTodos(client)
            let response = try await client.execute(uri: "/Todo/?priority==3", method: .delete)
            #expect(response.status == .ok)
            #expect(response.json() == ["deleted": 1])
            #expect(ids(try await client.execute(uri: "/Todo/", method: .get)) == ["t1", "t3"])
            try await client.execute(uri: "/Todo/t2", method: .get).expectProblem(.notFound)

            let none = try await client.execute(uri: "/Todo/?priority==99", method: .delete)
            #expect(none.json() == ["deleted": 0])
            #expect(ids(try await client.execute(uri: "/Todo/", method: .get)) == ["t1", "t3"])
        }
    }

    @Test func deleteByQueryMatchingSeveralNeedsALimit() async throws {
        try await withREST(HTTPConfiguration(maximumResults: 50)) { client, _ in
            try await seedTodos(client)
            for query in ["done==true", "id=ne=zzz", "priority=gt=0", "done==true|done==false"] {
                let refused = try await client.execute(uri: "/Todo/?\(query)", method: .delete)
                let problem = refused.expectProblem(.badRequest, code: "deleteNeedsLimit")
                let detail = problem["detail"]?.stringValue ?? ""
                #expect(detail.contains("more than one record") && detail.contains("limit(50)"), "\(detail)")
                #expect(ids(try await client.execute(uri: "/Todo/", method: .get)) == ["t1", "t2", "t3"], "nothing deleted by \(query)")
            }
            // With a limit: at most that many, in sort order.
            let one = try await client.execute(uri: "/Todo/?done==true&sort(-priority)&limit(1)", method: .delete)
            #expect(one.json() == ["deleted": 1])
            #expect(ids(try await client.execute(uri: "/Todo/", method: .get)) == ["t1", "t3"])
            let rest = try await client.execute(uri: "/Todo/?id=ne=zzz&limit(50)", method: .delete)
            #expect(rest.json() == ["deleted": 2])
            #expect(ids(try await client.execute(uri: "/Todo/", method: .get)) == [])
            try await client.execute(uri: "/Todo/?id=ne=zzz&limit(51)", method: .delete).expectProblem(.badRequest)
        }
    }

    @Test func sortingByAnUndeclaredAttributeIsWarnedAbout() async throws {
        try await withREST { client, _ in
            try await seedTodos(client)
            let response = try await client.execute(uri: "/Todo/?sort(+nosuch)", method: .get)
            #expect(response.status == .ok)
            let warnings = response.headers[values: .warning]
            #expect(warnings.contains { $0.contains("undeclared attribute 'nosuch'") && $0.contains("title, done") }, "\(warnings)")
            let declared = try await client.execute(uri: "/Todo/?sort(-priority)", method: .get)
            #expect(ids(declared) == ["t2", "t3", "t1"])
            #expect(declared.headers[.warning] == nil)
            let filtered = try await client.execute(uri: "/Todo/?titel=a", method: .get)
            #expect(filtered.headers[values: .warning].contains { $0.contains("'titel'") })
        }
    }

    @Test func deleteWithoutAConditionIsRefused() async throws {
        try await withREST { client, _ in
            try await seedTodos(client)
            try await client.execute(uri: "/Todo/", method: .delete).expectProblem(.badRequest)
            try await client.execute(uri: "/Todo/?limit(1)", method: .delete).expectProblem(.badRequest)
            try await client.execute(uri: "/Todo/?done=zz=1", method: .delete).expectProblem(.badRequest)
            #expect(ids(try await client.execute(uri: "/Todo/", method: .get)) == ["t1", "t2", "t3"])
        }
    }
}
