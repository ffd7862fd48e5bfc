import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MicrolithHTTP
import MicrolithJSON
import MicrolithModules
import MicrolithStore
import NIOCore
import Testing

@Suite("REST: problem codes, request ids and what stays in the log")
struct ProblemResponseTests {
    @Test func everyRefusalCarriesItsCodeAndTheRequestID() async throws {
        try await withREST { client, _ in
            try await client.execute(uri: "/Nope/1", method: .get).expectProblem(.notFound, code: "notFound")
            try await put(client, "/Todo/t1", #"{"title":3}"#).expectProblem(.badRequest, code: "invalidRecord")
            try await put(client, "/Todo/t1", #"{"title": }"#).expectProblem(.badRequest, code: "malformedJSON")
            try await client.execute(uri: "/Todo/?a=b=c", method: .get).expectProblem(.badRequest, code: "querySyntax")
            try await client.execute(uri: "/Todo/?priority=high", method: .get).expectProblem(.badRequest, code: "badQuery")
            try await put(client, "/Todo/", "{}").expectProblem(.methodNotAllowed, code: "methodNotAllowed")
            let xml = try await client.execute(uri: "/Todo/t1", method: .put, headers: [.contentType: "application/xml"], body: json("<a/>"))
            xml.expectProblem(.unsupportedMediaType, code: "unsupportedMediaType")
            try await put(client, "/Todo/t1", #"{"title":"a"}"#)
            let stale = try await put(client, "/Todo/t1", #"{"title":"b"}"#, headers: [.ifMatch: "\"nope\""])
            stale.expectProblem(.preconditionFailed, code: "versionMismatch")
            let taken = try await put(client, "/Todo/t1", #"{"title":"b"}"#, headers: [.ifNoneMatch: "*"])
            taken.expectProblem(.preconditionFailed, code: "versionMismatch")
        }
    }

    @Test func requestIDsDifferPerRequest() async throws {
        try await withREST { client, _ in
            let a = try await client.execute(uri: "/Nope/1", method: .get).expectProblem(.notFound)
            let b = try await client.execute(uri: "/Nope/1", method: .get).expectProblem(.notFound)
            #expect(a["requestId"] != b["requestId"])
        }
    }

    @Test func anUnknownErrorIsAnInternalErrorWithoutItsText() {
        struct Leaky: Error, CustomStringConvertible {
            var description: String { "SELECT secret FROM r_Todo: disk I/O error" }
        }
        let problem = ProblemMiddleware<BasicRequestContext>.problem(for: Leaky(), requestID: "req-7")
        #expect(problem.status == .internalServerError)
        #expect(problem.code == "internal")
        #expect(problem.detail == "internal error; see the server log for request req-7")
        #expect(problem.json["requestId"] == "req-7")
        #expect(!String(decoding: JSONWriter.encode(problem.json), as: UTF8.self).contains("SELECT"))
    }

    @Test func httpErrorsKeepTheirStatusButAServerErrorHidesItsBody() {
        let missing = ProblemMiddleware<BasicRequestContext>.problem(for: HTTPError(.notFound, message: "no route"), requestID: "r5")
        #expect(missing.status == .notFound && missing.code == "notFound" && missing.detail == "no route")
        let broken = ProblemMiddleware<BasicRequestContext>.problem(for: HTTPError(.internalServerError, message: "stack: 0x1234"), requestID: "r6")
        #expect(broken.status == .internalServerError && broken.code == "internal" && !broken.detail.contains("0x1234"))
    }

    @Test func storageFailuresKeepSQLiteAndSQLToTheLog() {
        let storage = StoreError(.storage, "the write could not be committed: SQLite error 10: disk I/O error - while executing `COMMIT TRANSACTION`")
        let problem = ProblemMiddleware<BasicRequestContext>.problem(for: storage, requestID: "r1")
        #expect(problem.status == .internalServerError)
        #expect(problem.code == "storage")
        #expect(!problem.detail.contains("COMMIT") && !problem.detail.contains("SQLite"))
        #expect(problem.detail.contains("r1"))
        let schema = ProblemMiddleware<BasicRequestContext>.problem(for: StoreError(.incompatibleSchema, "table r_Todo ..."))
        #expect(schema.status == .internalServerError && !schema.detail.contains("r_Todo"))
    }

    @Test func aBusyStoreIs503WithRetryAfter() {
        let problem = ProblemMiddleware<BasicRequestContext>.problem(for: StoreError(.busy, "locked"), requestID: "r2")
        #expect(problem.status == .serviceUnavailable)
        #expect(problem.code == "storeBusy")
        #expect(problem.headers[.retryAfter] == "1")
        let closed = ProblemMiddleware<BasicRequestContext>.problem(for: StoreError(.closed, "the store is closed"))
        #expect(closed.status == .serviceUnavailable && closed.code == "storeClosed")
    }

    @Test func operationErrorsKeepTheirCodeButNotAnInternalMessage() {
        let conflict = ProblemMiddleware<BasicRequestContext>.problem(for: OperationError.conflict("out of stock"), requestID: "r3")
        #expect(conflict.status == .conflict && conflict.code == "conflict" && conflict.detail == "out of stock")
        let failed = ProblemMiddleware<BasicRequestContext>.problem(
            for: OperationError.internal("shop.checkout failed: Swift.DecodingError.keyNotFound(...)"), requestID: "r4")
        #expect(failed.status == .internalServerError && failed.code == "internal")
        #expect(!failed.detail.contains("DecodingError"))
        let busy = ProblemMiddleware<BasicRequestContext>.problem(for: OperationError(StoreError(.busy, "locked")))
        #expect(busy.status == .serviceUnavailable && busy.code == "storeBusy" && busy.headers[.retryAfter] == "1")
    }

    @Test func defaultCodesComeFromTheStatus() {
        #expect(Problem.defaultCode(for: .badRequest) == "badRequest")
        #expect(Problem.defaultCode(for: .notFound) == "notFound")
        #expect(Problem.defaultCode(for: .uriTooLong) == "uriTooLong")
        #expect(Problem.defaultCode(for: .contentTooLarge) == "contentTooLarge")
        #expect(Problem.defaultCode(for: .internalServerError) == "internal")
        #expect(Problem.defaultCode(for: .serviceUnavailable) == "unavailable")
    }

    @Test func aWriteLockHeldElsewhereIs503AndNotReadyUntilReleased() async throws {
        try await withREST(busyTimeoutMilliseconds: 200) { client, store in
            try await put(client, "/Todo/t1", #"{"title":"a"}"#)
            #expect(try await client.execute(uri: "/ready", method: .get).status == .ok)
            let holder = try await WriteLockHolder(on: store)
            let started = ContinuousClock.now
            let refused = try await put(client, "/Todo/t2", #"{"title":"b"}"#)
            let problem = refused.expectProblem(.serviceUnavailable, code: "storeBusy")
            #expect(ContinuousClock.now - started < .seconds(5))
            #expect(refused.headers[.retryAfter] == "1")
            let text = refused.text
            #expect(!text.contains("BEGIN") && !text.contains("SQLite") && !text.contains("locked -"), "\(text)")
            #expect(problem["detail"]?.stringValue?.contains("retry") == true)
            let notReady = try await client.execute(uri: "/ready", method: .get)
            notReady.expectProblem(.serviceUnavailable, code: "notReady")
            #expect(notReady.headers[.retryAfter] != nil)
            #expect(!notReady.text.contains("BEGIN"))
            // Reads are not held up.
            #expect(try await client.execute(uri: "/Todo/t1", method: .get).status == .ok)
            try await holder.release()
            #expect(try await client.execute(uri: "/ready", method: .get).status == .ok)
            #expect(try await put(client, "/Todo/t2", #"{"title":"b"}"#).status == .created)
        }
    }
}
