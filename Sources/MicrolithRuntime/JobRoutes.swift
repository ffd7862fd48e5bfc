import Foundation
import Hummingbird
import MicrolithHTTP
import MicrolithJSON
import MicrolithJobs
import MicrolithSchema
import MicrolithStore
import MicrolithTables

/// Job and schedule state over REST:
///
/// - `GET /_jobs?state=dead&name=mail.receipt&limit=50&database=data`: jobs, newest first,
///   with counts per state.
/// - `GET /_jobs/{id}?database=data`: one job.
/// - `POST /_jobs/{id}/retry?database=data`: a dead (or done) job queued again with fresh attempts.
/// - `GET /_schedules`: every schedule with its next and last run.
///
/// Each needs a super user (HTTP Basic), with or without `roles.yaml`: jobs carry what modules
/// enqueued, and a retry runs one again.
enum JobRoutes {
    static func add(to router: Router<MicrolithRequestContext>, store: Store, access: TableAccess) {
        let queue = JobQueue(store: store)
        router.get("/_jobs") { request, _ -> Response in
            try access.authorize(.superUser, to: "read the job queue", for: Principal.current)
            let database = try database(request, store)
            let items = request.uri.queryParameters
            var state: JobRecord.State?
            if let s = items["state"].map(String.init) {
                guard let parsed = JobRecord.State(rawValue: s) else {
                    throw Problem(.badRequest, "state must be one of \(JobRecord.State.allCases.map(\.rawValue).joined(separator: ", ")), got '\(s)'")
                }
                state = parsed
            }
            var limit = 100
            if let l = items["limit"].map(String.init) {
                guard let n = Int(l), (1...10_000).contains(n) else {
                    throw Problem(.badRequest, "limit must be an integer from 1 to 10000, got '\(l)'")
                }
                limit = n
            }
            let jobs = try await queue.list(database: database, state: state, name: items["name"].map(String.init), limit: limit)
            let counts = try await queue.counts(database: database)
            var countObject = JSONObject()
            for s in JobRecord.State.allCases { countObject[s.rawValue] = .int(Int64(counts[s] ?? 0)) }
            return json(["database": .string(database), "counts": .object(countObject), "jobs": .array(jobs.map(\.json))])
        }
        /// Answers with the job `action` returns for the request's database and id, or 404.
        @Sendable func oneJob(
            _ request: Request, _ context: MicrolithRequestContext, _ action: (String, Int64) async throws -> JobRecord?
        ) async throws -> Response {
            let database = try database(request, store)
            let id = try jobID(context)
            guard let job = try await action(database, id) else { throw Problem(.notFound, "no job \(id) in database '\(database)'") }
            return json(job.json)
        }
        router.get("/_jobs/{id}") { request, context in
            try access.authorize(.superUser, to: "read the job queue", for: Principal.current)
            return try await oneJob(request, context) { try await queue.job(database: $0, id: $1) }
        }
        router.post("/_jobs/{id}/retry") { request, context in
            try access.authorize(.superUser, to: "retry jobs", for: Principal.current)
            return try await oneJob(request, context) { try await queue.retry(database: $0, id: $1) }
        }
        router.get("/_schedules") { _, _ -> Response in
            try access.authorize(.superUser, to: "read the schedules", for: Principal.current)
            return json(["schedules": .array(try await Scheduler.states(store: store).map(\.json))])
        }
    }

    static func database(_ request: Request, _ store: Store) throws -> String {
        guard let name = request.uri.queryParameters["database"].map(String.init) else { return store.databaseNames.first ?? Schema.defaultDatabase }
        guard store.databaseNames.contains(name) else {
            throw Problem(.notFound, "no database named '\(name)'; databases: \(store.databaseNames.joined(separator: ", "))")
        }
        return name
    }

    static func jobID(_ context: MicrolithRequestContext) throws -> Int64 {
        let text = context.parameters.get("id")!
        guard let id = Int64(text), id > 0 else { throw Problem(.badRequest, "a job id is a positive integer, got '\(text)'") }
        return id
    }

    static func json(_ value: JSONValue) -> Response {
        Response(
            status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: JSONWriter.encode(value))))
    }
}
