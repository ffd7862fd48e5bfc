import Foundation
import HTTPTypes
public import Hummingbird
package import MicrolithJSON
import MicrolithQuery
import MicrolithSchema
public import MicrolithStore
public import MicrolithTables
package import NIOCore

/// The REST interface of every exported table: `/{Table}/{id}` and `/{Table}/?query`.
public struct TableEndpoint: Sendable {
    public let store: Store
    public let configuration: HTTPConfiguration
    /// Reads and writes on behalf of clients, through the application's table hooks; shared with
    /// the other doors (subscriptions, MQTT).
    public let access: TableAccess
    let executor: QueryExecutor

    /// The endpoint of `access`'s exported tables.
    public init(access: TableAccess, configuration: HTTPConfiguration) {
        self.access = access
        self.store = access.store
        self.configuration = configuration
        self.executor = QueryExecutor(store: access.store, maximumResults: configuration.maximumResults)
    }

    /// The endpoint of `store`'s exported tables, with the application's table `hooks`.
    public init(store: Store, configuration: HTTPConfiguration, hooks: [TableHooks] = []) {
        self.init(access: TableAccess(store: store, hooks: hooks), configuration: configuration)
    }

    /// The exported tables and the grammar of their URLs.
    public var directory: TableDirectory { access.directory }

    // MARK: Records

    /// Who `request` acts for: the principal ``AuthenticationMiddleware`` verified for it, or the
    /// anonymous role for a request without credentials.
    public static func principal(_ request: Request) -> Principal {
        Principal.current
    }

    /// `GET`/`HEAD /{Table}/{id}`: from the record cache when it is there, never re-encoded.
    public func get(_ request: Request, context: some RequestContext, table: TableLayout, id: RecordID) async throws -> Response {
        let record = try await access.get(table, id, for: Self.principal(request), request: Self.resourceRequest(request, context))
        guard let record else {
            throw Self.notFound(table, id)
        }
        if let tags = request.headers[.ifNoneMatch], Self.matches(tags, record.etag, weak: true) {
            return Response(status: .notModified, headers: [.eTag: record.etag])
        }
        return Self.recordResponse(record, status: .ok, head: request.method == .head)
    }

    /// Whether `GET /T/id` of `table` may be answered straight from the cache (no `get` hook, and
    /// the anonymous role may read the table).
    public func servesCachedReads(_ table: TableLayout) -> Bool {
        access.servesCachedReads(table)
    }

    /// What a hook or resource sees of a request (its path parameters still empty).
    public static func resourceRequest(_ request: Request, _ context: some RequestContext) -> ResourceRequest {
        ResourceRequest(
            method: request.method.rawValue, path: request.uri.path, query: request.uri.query, headers: headers(request.headers),
            requestID: context.id, principal: Principal.current)
    }

    /// Request headers as hooks and resources see them: names lower-cased, repeated ones joined with `, `.
    public static func headers(_ fields: HTTPFields) -> [String: String] {
        var headers: [String: String] = [:]
        for field in fields {
            let name = field.name.canonicalName
            headers[name] = headers[name].map { "\($0), \(field.value)" } ?? field.value
        }
        return headers
    }

    /// `PUT /{Table}/{id}`: replaces or creates the record.
    public func put(_ request: Request, context: some RequestContext, table: TableLayout, id: RecordID) async throws -> Response {
        let body = try await objectBody(request, context: context)
        let principal = Self.principal(request)
        let (record, created) = try await access.put(
            table, id, body: body, precondition: Self.precondition(request), for: principal, request: Self.resourceRequest(request, context))
        var response = Self.recordResponse(
            access.withoutHidden(record, table: table, verb: created ? .insert : .update, for: principal), status: created ? .created : .ok,
            head: false)
        if created { response.headers[.location] = TableDirectory.path(table, id) }
        return response
    }

    /// `PATCH /{Table}/{id}`: merges the body into the record (RFC 7396).
    public func patch(_ request: Request, context: some RequestContext, table: TableLayout, id: RecordID) async throws -> Response {
        let body = try await objectBody(request, context: context)
        let principal = Self.principal(request)
        let record = try await access.patch(
            table, id, patch: body, precondition: Self.precondition(request), for: principal, request: Self.resourceRequest(request, context))
        guard let record else { throw Self.notFound(table, id) }
        return Self.recordResponse(access.withoutHidden(record, table: table, verb: .update, for: principal), status: .ok, head: false)
    }

    /// `POST /{Table}/`: creates a record with a generated key; answers 201 with `Location`.
    public func post(_ request: Request, context: some RequestContext, table: TableLayout) async throws -> Response {
        let body = try await objectBody(request, context: context)
        let principal = Self.principal(request)
        let record = try await access.post(table, body: body, for: principal, request: Self.resourceRequest(request, context))
        var response = Self.recordResponse(access.withoutHidden(record, table: table, verb: .insert, for: principal), status: .created, head: false)
        response.headers[.location] = TableDirectory.path(table, record.id)
        return response
    }

    /// `DELETE /{Table}/{id}`.
    public func delete(_ request: Request, context: some RequestContext, table: TableLayout, id: RecordID) async throws -> Response {
        let existed = try await access.delete(
            table, id, precondition: Self.precondition(request), for: Self.principal(request), request: Self.resourceRequest(request, context))
        guard existed else { throw Self.notFound(table, id) }
        return Response(status: .noContent)
    }

    // MARK: Collections

    /// `GET /{Table}/?query`: the matching records as a JSON array.
    public func search(_ request: Request, context: some RequestContext, table: TableLayout) async throws -> Response {
        try await search(request, context: context, table: table, prefix: nil)
    }

    /// `GET /{Table}/{prefix}/?query`: the records whose key starts with `prefix` (it ends with
    /// `/`; ids holding `/` form a hierarchy, as the same URL's subscription follows it) and that
    /// match the query, in key order unless the query sorts.
    public func searchPrefix(_ request: Request, context: some RequestContext, table: TableLayout, prefix: String) async throws -> Response {
        try await search(request, context: context, table: table, prefix: prefix)
    }

    private func search(_ request: Request, context: some RequestContext, table: TableLayout, prefix: String?) async throws -> Response {
        let started = ContinuousClock.now
        let principal = Self.principal(request)
        let info = access.hooks(table) == nil ? nil : Self.resourceRequest(request, context)
        let query = try parseQuery(request, table: table, prefix: prefix)
        try access.checkSearch(
            table, paths: query.namedPaths, selected: query.selectedPaths, for: principal, request: info ?? Self.resourceRequest(request, context))
        var result = try await executor.execute(query, table: table)
        if !access.showsStoredRecords(table, to: principal) {
            let info = info ?? Self.resourceRequest(request, context)
            result.rows = try result.rows.map { row in
                QueryRow(id: row.id, record: try access.shown(row.record, table: table, for: principal, request: info), json: nil)
            }
        }
        var out = ByteBuffer()
        out.reserveCapacity(64 + result.rows.count * 128)
        out.writeStaticString("[")
        var bytes: [UInt8] = []
        for (i, row) in result.rows.enumerated() {
            if i > 0 { out.writeStaticString(",") }
            if let json = row.json {
                out.writeString(json)
            } else {
                bytes.removeAll(keepingCapacity: true)
                JSONWriter.write(.object(row.record), into: &bytes)
                out.writeBytes(bytes)
            }
        }
        out.writeStaticString("]")
        var headers: HTTPFields = [.contentType: "application/json"]
        Self.describe(result.plan, started: started, into: &headers)
        warnUndeclared(query, table: table, into: &headers)
        if request.method == .head {
            headers[.contentLength] = String(out.readableBytes)
            return Response(status: .ok, headers: headers)
        }
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: out))
    }

    /// `DELETE /{Table}/?query`: deletes the matching record, or up to `n` of them with `limit(n)`,
    /// in one transaction.
    ///
    /// The rule that keeps a mistyped condition (`?id=ne=x`) from emptying a table: a query
    /// without `limit(...)` may match at most one record; when it matches more, nothing is deleted
    /// and the 400 says to add `limit(n)` (n at most `http.maxResults`). With `limit(n)` the first
    /// `n` matches in `sort(...)` order go; repeat to delete more. A query needs a condition.
    public func deleteMatching(_ request: Request, context: some RequestContext, table: TableLayout) async throws -> Response {
        let name = table.definition.exportName ?? table.name
        // Deleting what a query selects reads it first.
        try access.authorize(.read, table, for: Self.principal(request))
        try access.authorize(.delete, table, for: Self.principal(request))
        guard let raw = request.uri.query, !raw.isEmpty else {
            throw Problem(.badRequest, "DELETE /\(name)/ needs a query; refusing to delete every record")
        }
        let query = try parseQuery(request, table: table)
        guard query.filter != nil else {
            throw Problem(.badRequest, "DELETE needs at least one condition; refusing to delete every record")
        }
        try access.checkQueried(paths: query.namedPaths, table, for: Self.principal(request))
        let plan = executor.plan(query, table: table)
        // Without limit(...), two rows are enough to know the query matches more than one.
        let explicit = query.limit != nil
        let scope = Query(filter: query.filter, sort: query.sort, limit: query.limit ?? Limit(start: 0, end: 2))
        let maximum = configuration.maximumResults
        let executor = self.executor
        let access = self.access
        let info = access.hooks(table)?.delete == nil ? nil : Self.resourceRequest(request, context)
        let count = try await store.write(database: table.definition.database) { txn in
            let rows = try executor.run(scope, plan: plan, table: table, db: txn.db).rows
            if !explicit, rows.count > 1 {
                throw Problem(
                    .badRequest,
                    "DELETE /\(name)/?\(raw) matches more than one record and nothing was deleted; to delete several, say how many at most: "
                        + "add &limit(n) with n ≤ \(maximum), e.g. DELETE /\(name)/?\(raw)&limit(\(maximum)) (repeat until it deletes 0)",
                    code: "deleteNeedsLimit")
            }
            for row in rows {
                if let info {
                    _ = try access.delete(table, row.id, in: txn, request: info)
                } else {
                    try txn.delete(table, id: row.id)
                }
            }
            return rows.count
        }
        var headers: HTTPFields = [.contentType: "application/json"]
        Self.describe(plan, started: nil, into: &headers)
        warnUndeclared(query, table: table, into: &headers)
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: "{\"deleted\":\(count)}")))
    }

    /// The request's query bound to `table`; with `prefix`, its conditions and "the key starts with
    /// `prefix`" (sorted by key unless the query sorts).
    func parseQuery(_ request: Request, table: TableLayout, prefix: String? = nil) throws -> Query {
        let raw = request.uri.query ?? ""
        guard raw.utf8.count <= configuration.maximumQueryLength else {
            throw Problem(.uriTooLong, "the query string is \(raw.utf8.count) bytes; the limit is \(configuration.maximumQueryLength)")
        }
        var parsed = try QueryParser.parse(raw)
        if let prefix {
            // String keys only: the table directory refuses a prefix of numeric keys.
            let pk = table.definition.primaryKeyAttribute
            let within = Condition.compare(Comparison(path: [pk.name], op: .sw, value: .typed(.string(prefix))))
            parsed.filter = parsed.filter.map { .and([within, $0]) } ?? within
            if parsed.sort.isEmpty { parsed.sort = [SortKey(path: [pk.name])] }
        }
        let query = try parsed.bound(to: table.definition, schema: store.schema)
        if let limit = query.limit, limit.count > configuration.maximumResults {
            throw Problem(.badRequest, "limit(\(limit.count)) is above the maximum of \(configuration.maximumResults) records per query")
        }
        if !configuration.allowFullScans {
            let plan = executor.plan(query, table: table)
            if plan.isFullScan {
                let sparse = query.nullTestsOnSparseIndexes(table)
                var advice = "index the attributes it filters on with @indexed"
                if !sparse.isEmpty {
                    advice +=
                        "; the sparse index of " + sparse.map { "'\($0)'" }.joined(separator: ", ")
                        + " (@indexed(sparse: true)) holds no record without a value, so a test for null cannot use it"
                }
                throw Problem(
                    .badRequest, "this query needs a full scan (no index serves its conditions) and full scans are disabled; " + advice)
            }
        }
        return query
    }

    static func describe(_ plan: QueryPlan, started: ContinuousClock.Instant?, into headers: inout HTTPFields) {
        var timing = "query;desc=\"\(plan)\""
        if let started {
            let ms = (ContinuousClock.now - started).milliseconds
            timing += ";dur=\((ms * 1000).rounded() / 1000)"
        }
        headers[HTTPField.Name("Server-Timing")!] = timing
        if plan.isFullScan {
            headers[HTTPField.Name("Warning")!] = "299 microlith \"full scan: no index serves this query's conditions\""
        }
    }

    /// Adds a `Warning` naming each attribute the query filters or sorts on that the (open)
    /// table does not declare: valid, but a typo there silently matches nothing or sorts nothing.
    func warnUndeclared(_ query: Query, table: TableLayout, into headers: inout HTTPFields) {
        for unknown in query.undeclaredAttributes(in: table.definition, schema: store.schema) {
            let text = String(unknown.unicodeScalars.map { $0.value >= 0x20 && $0.value < 0x7F && $0 != "\"" && $0 != "\\" ? Character($0) : "?" })
            headers.append(HTTPField(name: HTTPField.Name("Warning")!, value: "299 microlith \"undeclared attribute \(text)\""))
        }
    }

    // MARK: Helpers

    /// Whether a request body with this `Content-Type` is read as JSON.
    ///
    /// `curl -d` labels its body `application/x-www-form-urlencoded` unless told otherwise; that
    /// label is accepted so the one-line curl examples work, and the body is still parsed as JSON.
    public static func acceptsAsJSON(_ type: String) -> Bool {
        type.hasPrefix("application/json") || type.contains("+json") || type.hasPrefix("text/plain")
            || type.hasPrefix("application/x-www-form-urlencoded") || type.hasPrefix("*/*")
    }

    /// Reads the body as a JSON object, within the size limit.
    func objectBody(_ request: Request, context: some RequestContext) async throws -> JSONObject {
        try Self.requireJSON(request)
        let buffer = try await Self.body(request, limit: configuration.maximumBodyBytes)
        guard buffer.readableBytes > 0 else { throw Problem(.badRequest, "the request body is empty; send a JSON object") }
        return try Self.jsonObject(buffer)
    }

    /// `buffer` parsed as a JSON object; a problem (400) naming what is wrong otherwise.
    package static func jsonObject(_ buffer: ByteBuffer) throws -> JSONObject {
        let value: JSONValue
        do {
            value = try buffer.withUnsafeReadableBytes { try JSONParser.parse($0) }
        } catch let e as JSONParseError {
            throw Problem(.badRequest, e.description, code: "malformedJSON", title: "Malformed JSON", extensions: ["offset": .int(Int64(e.offset))])
        }
        guard case .object(let object) = value else {
            throw Problem(.badRequest, "the body must be a JSON object, got \(value.typeName)")
        }
        return object
    }

    /// Refuses (415) a body labelled as something other than JSON; an unlabelled one passes.
    public static func requireJSON(_ request: Request) throws {
        if let type = request.headers[.contentType]?.lowercased(), !type.isEmpty, !acceptsAsJSON(type) {
            throw Problem(.unsupportedMediaType, "the body must be JSON (Content-Type: application/json), got \(type)")
        }
    }

    /// The whole request body: 413 when it is larger than `limit` bytes, 400 when it cannot be
    /// read as sent (malformed chunked framing, a connection closed mid-body).
    public static func body(_ request: Request, limit: Int) async throws -> ByteBuffer {
        var request = request
        do {
            return try await request.collectBody(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw tooLarge(limit)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw tooLarge(limit)
        } catch {
            throw Problem(
                .badRequest, "the request body could not be read: its framing (Content-Length or chunked encoding) is malformed",
                code: "malformedBody")
        }
    }

    static func tooLarge(_ limit: Int) -> Problem {
        Problem(.contentTooLarge, "the request body is larger than the limit of \(limit) bytes")
    }

    static func notFound(_ table: TableLayout, _ id: RecordID) -> Problem {
        Problem(.notFound, "\(table.definition.exportName ?? table.name)/\(id) does not exist")
    }

    static func recordResponse(_ record: CachedRecord, status: HTTPResponse.Status, head: Bool) -> Response {
        let headers: HTTPFields = [.contentType: "application/json", .eTag: record.etag]
        if head {
            var h = headers
            h[.contentLength] = String(record.json.readableBytes)
            return Response(status: status, headers: h)
        }
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: record.json))
    }

    static func precondition(_ request: Request) -> WritePrecondition {
        WritePrecondition(
            ifMatch: request.headers[.ifMatch].map { tags($0, weak: false) },
            ifNoneMatch: request.headers[.ifNoneMatch].map { tags($0, weak: false) })
    }

    static func tags(_ header: String, weak: Bool) -> [String] {
        header.split(separator: ",").map { raw in
            var t = raw.trimmingCharacters(in: .whitespaces)
            if weak, t.hasPrefix("W/") { t.removeFirst(2) }
            return t
        }
    }

    static func matches(_ header: String, _ etag: String, weak: Bool) -> Bool {
        let list = tags(header, weak: weak)
        return list.contains("*") || list.contains(etag)
    }
}
