import Foundation
import HTTPTypes
import HummingbirdTesting
import MicrolithJSON
import NIOCore
import Testing

/// `/_jobs` and `/_schedules` on a live server, with jobs enqueued by an operation over HTTP: the
/// listing and its filters, one job, retrying a dead job, and problems for bad parameters; only for
/// a super user.
@Suite(.timeLimit(.minutes(1))) struct JobRoutesTests {
    func file(_ client: any TestClientProtocol, _ name: String) async throws {
        let response = try await client.execute(
            uri: "/_operations/desk/file", method: .post, headers: [.contentType: "application/json"], body: jsonBody(#"{"name":"\#(name)"}"#))
        #expect(response.status == .ok, "\(String(buffer: response.body))")
    }

    func jobs(_ client: any TestClientProtocol, _ query: String = "") async throws -> JSONValue {
        let response = try await client.execute(uri: "/_jobs\(query)", method: .get, headers: adminHeaders)
        #expect(response.status == .ok, "\(String(buffer: response.body))")
        #expect(response.headers[.contentType] == "application/json")
        return response.json()
    }

    /// Without the worker role, enqueued jobs stay pending.
    @Test func enqueuedJobsAreListedNewestFirstWithCountsPerState() async throws {
        try await withLiveServer(roles: ["api", "desk"], environment: adminEnvironment) { _, client in
            for name in ["a", "b", "c"] { try await file(client, name) }
            let all = try await jobs(client)
            #expect(all["database"] == "data")
            #expect(all["counts"]?["pending"] == 3)
            #expect(all["counts"]?["dead"] == 0)
            let listed = all["jobs"]?.arrayValue ?? []
            #expect(listed.map { $0["input"]?["name"] } == ["c", "b", "a"])
            #expect(listed.allSatisfy { $0["name"] == "desk.note" && $0["state"] == "pending" && $0["attempts"] == 0 })
            let ids = listed.compactMap { $0["id"]?.int64 }
            #expect(ids == ids.sorted(by: >) && ids.count == 3)

            #expect(try await jobs(client, "?limit=1")["jobs"]?.arrayValue?.map { $0["input"]?["name"] } == ["c"])
            #expect(try await jobs(client, "?state=dead")["jobs"] == [])
            #expect(try await jobs(client, "?name=desk.failing")["jobs"] == [])
            #expect(try await jobs(client, "?name=desk.note&state=pending")["jobs"]?.arrayValue?.count == 3)

            let one = try await client.execute(uri: "/_jobs/\(ids[0])", method: .get, headers: adminHeaders)
            #expect(one.status == .ok)
            #expect(one.json() == listed[0])
        }
    }

    @Test func aDeadJobIsRetriedWithFreshAttempts() async throws {
        try await withLiveServer(environment: adminEnvironment) { _, client in
            try await file(client, "fail")
            // The worker runs it once (maximumAttempts 1): dead, with the error it threw.
            var dead: JSONValue?
            let deadline = ContinuousClock.now + .seconds(20)
            while dead == nil, ContinuousClock.now < deadline {
                dead = try await jobs(client, "?state=dead")["jobs"]?.arrayValue?.first
                if dead == nil { try await Task.sleep(for: .milliseconds(50)) }
            }
            let job = try #require(dead, "the failing job never died")
            #expect(job["attempts"] == 1 && job["maxAttempts"] == 1)
            #expect(job["lastError"]?.stringValue?.contains("fail never works") == true, "\(job)")
            let id = try #require(job["id"]?.int64)

            let retried = try await client.execute(uri: "/_jobs/\(id)/retry", method: .post, headers: adminHeaders)
            #expect(retried.status == .ok, "\(String(buffer: retried.body))")
            #expect(retried.json()["state"] == "pending")
            #expect(retried.json()["attempts"] == 0)
            #expect(retried.json()["id"] == .int(id))
        }
    }

    @Test func onlyDeadOrDoneJobsCanBeRetried() async throws {
        try await withLiveServer(roles: ["api", "desk"], environment: adminEnvironment) { _, client in
            try await file(client, "a")
            let id = try #require(try await jobs(client)["jobs"]?.arrayValue?.first?["id"]?.int64)
            let refused = try await client.execute(uri: "/_jobs/\(id)/retry", method: .post, headers: adminHeaders)
            #expect(refused.status == .preconditionFailed, "\(String(buffer: refused.body))")
            #expect(try await jobs(client)["counts"]?["pending"] == 1)
        }
    }

    @Test(arguments: [
        ("/_jobs?state=sleeping", HTTPResponse.Status.badRequest, "state must be one of"),
        ("/_jobs?limit=0", .badRequest, "limit must be an integer from 1 to 10000"),
        ("/_jobs?limit=10001", .badRequest, "limit must be"),
        ("/_jobs?limit=ten", .badRequest, "limit must be"),
        ("/_jobs?database=other", .notFound, "no database named 'other'"),
        ("/_jobs/abc", .badRequest, "a job id is a positive integer"),
        ("/_jobs/0", .badRequest, "a job id is a positive integer"),
        ("/_jobs/999", .notFound, "no job 999 in database 'data'"),
    ])
    func badParametersGetProblems(uri: String, status: HTTPResponse.Status, detail: String) async throws {
        try await withLiveServer(roles: ["api", "desk"], environment: adminEnvironment) { _, client in
            let response = try await client.execute(uri: uri, method: .get, headers: adminHeaders)
            let problem = response.expectProblem(status, code: status == .notFound ? "notFound" : "badRequest")
            #expect(problem["detail"]?.stringValue?.contains(detail) == true, "\(problem)")
        }
    }

    @Test func retryingAJobThatIsNotThereIs404() async throws {
        try await withLiveServer(roles: ["api", "desk"], environment: adminEnvironment) { _, client in
            let response = try await client.execute(uri: "/_jobs/42/retry", method: .post, headers: adminHeaders)
            response.expectProblem(.notFound, code: "notFound")
        }
    }

    @Test func onlyASuperUserReadsOrRetriesJobs() async throws {
        try await withLiveServer(roles: ["api", "desk"], environment: adminEnvironment) { _, client in
            try await file(client, "a")
            let anonymous = try await client.execute(uri: "/_jobs", method: .get)
            let problem = anonymous.expectProblem(.unauthorized, code: "unauthorized")
            #expect(problem["detail"]?.stringValue?.hasPrefix("the anonymous role may not read the job queue") == true, "\(problem)")
            try await client.execute(uri: "/_jobs/1/retry", method: .post).expectProblem(.unauthorized, code: "unauthorized")
            try await client.execute(uri: "/_schedules", method: .get).expectProblem(.unauthorized, code: "unauthorized")
            let wrong = try await client.execute(uri: "/_jobs", method: .get, headers: [.authorization: "Basic cm9vdDp3cm9uZw=="])
            wrong.expectProblem(.unauthorized, code: "unauthorized")
        }
    }

    @Test func schedulesAreListed() async throws {
        try await withLiveServer(roles: ["api", "desk"], environment: adminEnvironment) { _, client in
            let response = try await client.execute(uri: "/_schedules", method: .get, headers: adminHeaders)
            #expect(response.status == .ok)
            #expect(response.json() == ["schedules": []])
        }
    }
}

extension JSONValue {
    /// The integer, when this is one.
    fileprivate var int64: Int64? {
        if case .int(let i) = self { return i }
        return nil
    }
}
