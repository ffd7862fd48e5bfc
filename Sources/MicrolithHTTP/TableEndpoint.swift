import Foundation
import HTTPTypes
public import Hummingbird
import MicrolithJSON
public import MicrolithModules
import MicrolithQuery
import MicrolithSchema
public import MicrolithStore
import NIOCore

/// The REST interface of every exported table: `/{Table}/{id}` and `/{Table}/?query`.
public struct TableEndpoint: Sendable {
    public let store: Store
    public let configuration: HTTPConfiguration
    let executor: QueryExecutor
    let tablesByExportName: [String: TableLayout]
    /// Application hooks, by table position.
    let hooks: [TableHooks?]

    /// The endpoint of `store`'s exported tables, with the application's table `hooks`.
    public init(store: Store, configuration: HTTPConfiguration, hooks: [TableHooks] = []) {
        var byIndex = [TableHooks?](repeating: nil, count: store.tables.count)
        for h in hooks {
            if let t = store.table(typeName: h.table) ?? store.table(name: h.table) { byIndex[t.index] = h }
        }
        self.hooks = byIndex
        self.store = store
        self.configuration = configuration
        self.executor = QueryExecutor(store: store, maximumResults: configuration.maximumResults)
        var byName: [String: TableLayout] = [:]
        for t in store.tables {
            if let name = t.definition.exportName { byName[name] = t }
        }
        self.tablesByExportName = byName
    }

    /// The exported table named by a path segment.
    public func table(_ exportName: String) -> TableLayout? {
        tablesByExportName[exportName]
    }

    // MARK: Records

    /// `GET`/`HEAD /{Table}/{id}`: from the record cache when it is there, never re-encoded.
    public func get(_ request: Request, context: some RequestContext, table: TableLayout, id: RecordID) async throws -> Response {
        let record: CachedRecord?
        switch store.cachedGet(table, id) {
        case .present(let r): record = r
        case .absent: record = nil
        case nil: record = try await store.get(table, id)
        }
        guard var record else { throw Self.notFound(table, id) }
        if let hook = hooks[table.index]?.get {
            let shown = try hook(record.record, Self.resourceRequest(request, context))
            record = CachedRecord(id: record.id, record: shown, json: ByteBuffer(bytes: JSONWriter.encode(.object(shown))), version: record.version)
        }
        if let tags = request.headers[.ifNoneMatch], Self.matches(tags, record.etag, weak: true) {
            return Response(status: .notModified, headers: [.eTag: record.etag])
        }
        return Self.recordResponse(record, status: .ok, head: request.method == .head)
    }

    /// Whether `GET /T/id` of `table` may be answered straight from the cache (no `get` hook).
    public func servesCachedReads(_ table: TableLayout) -> Bool {
        hooks[table.index]?.get == nil
    }

    /// What a hook or resource sees of a request (its path parameters still empty).
    public static func resourceRequest(_ request: Request, _ context: some RequestContext) -> ResourceRequest {
        var headers: [String: String] = [:]
        for field in request.headers {
            let name = field.name.canonicalName
            headers[name] = headers[name].map { "\($0), \(field.value)" } ?? field.value
        }
        return ResourceRequest(
            method: request.method.rawValue, path: request.uri.path, query: request.uri.query, headers: headers, requestID: context.id)
    }

    /// `PUT /{Table}/{id}`: replaces or creates the record.
    public func put(_ request: Request, context: some RequestContext, table: TableLayout, id: RecordID) async throws -> Response {
        var body = try await objectBody(request, context: context)
        let precondition = Self.precondition(request)
        let hook = hooks[table.index]?.put
        let pk = table.definition.primaryKeyAttribute.name
        if hook != nil, body[pk] == nil { body[pk] = id.jsonValue }
        let info = hook == nil ? nil : Self.resourceRequest(request, context)
        let (record, created) = try await store.write(database: table.definition.database) { [body] txn in
            guard let hook, let info else {
                // One read of the current record: `replace` reports what it found.
                let (record, previous) = try txn.replace(table, id: id, body: body, precondition: precondition)
                return (record, previous == nil)
            }
            let current = try txn.get(table, id)
            try precondition.check(current, table: table.name, id: id)
            let shaped = try hook(body, current?.record, txn, info)
            return (try txn.put(table, id: id, body: shaped, precondition: precondition), current == nil)
        }
        var response = Self.recordResponse(record, status: created ? .created : .ok, head: false)
        if created { response.headers[.location] = Self.location(table, id) }
        return response
    }

    /// `PATCH /{Table}/{id}`: merges the body into the record (RFC 7396).
    public func patch(_ request: Request, context: some RequestContext, table: TableLayout, id: RecordID) async throws -> Response {
        let body = try await objectBody(request, context: context)
        let precondition = Self.precondition(request)
        let hook = hooks[table.index]?.patch
        let info = hook == nil ? nil : Self.resourceRequest(request, context)
        let record = try await store.write(database: table.definition.database) { txn -> CachedRecord? in
            guard let hook, let info else { return try txn.patch(table, id: id, patch: body, precondition: precondition) }
            let current = try txn.get(table, id)
            try precondition.check(current, table: table.name, id: id)
            guard let current else { return nil }
            let merged = try hook(WriteTransaction.merge(current.record, body), current.record, txn, info)
            return try txn.put(table, id: id, body: merged, precondition: precondition)
        }
        guard let record else { throw Self.notFound(table, id) }
        return Self.recordResponse(record, status: .ok, head: false)
    }

    /// `POST /{Table}/`: creates a record with a generated key; answers 201 with `Location`.
    public func post(_ request: Request, context: some RequestContext, table: TableLayout) async throws -> Response {
        let body = try await objectBody(request, context: context)
        let hook = hooks[table.index]?.post
        let info = hook == nil ? nil : Self.resourceRequest(request, context)
        let record = try await store.write(database: table.definition.database) { txn in
            guard let hook, let info else { return try txn.insert(table, body: body) }
            return try txn.insert(table, body: try hook(body, nil, txn, info))
        }
        var response = Self.recordResponse(record, status: .created, head: false)
        response.headers[.location] = Self.location(table, record.id)
        return response
    }

    /// `DELETE /{Table}/{id}`.
    public func delete(_ request: Request, context: some RequestContext, table: TableLayout, id: RecordID) async throws -> Response {
        let precondition = Self.precondition(request)
        let hook = hooks[table.index]?.delete
        let info = hook == nil ? nil : Self.resourceRequest(request, context)
        let existed = try await store.write(database: table.definition.database) { txn in
            if let hook, let info, let current = try txn.get(table, id) {
                try precondition.check(current, table: table.name, id: id)
                try hook(current.record, txn, info)
            }
            return try txn.delete(table, id: id, precondition: precondition)
        }
        guard existed else { throw Self.notFound(table, id) }
        return Response(status: .noContent)
    }

    // MARK: Collections

    /// `GET /{Table}/?query`: the matching records as a JSON array.
    public func search(_ request: Request, context: some RequestContext, table: TableLayout) async throws -> Response {
        let started = ContinuousClock.now
        let tableHooks = hooks[table.index]
        let info = tableHooks == nil ? nil : Self.resourceRequest(request, context)
        if let hook = tableHooks?.search, let info { try hook(info) }
        let query = try parseQuery(request, table: table)
        var result = try await executor.execute(query, table: table)
        if let hook = tableHooks?.get, let info {
            result.rows = try result.rows.map { row in QueryRow(id: row.id, record: try hook(row.record, info), json: nil) }
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
        guard let raw = request.uri.query, !raw.isEmpty else {
            throw Problem(.badRequest, "DELETE /\(name)/ needs a query; refusing to delete every record")
        }
        let query = try parseQuery(request, table: table)
        guard query.filter != nil else {
            throw Problem(.badRequest, "DELETE needs at least one condition; refusing to delete every record")
        }
        let plan = executor.plan(query, table: table)
        // Without limit(...), two rows are enough to know the query matches more than one.
        let explicit = query.limit != nil
        let scope = Query(filter: query.filter, sort: query.sort, limit: query.limit ?? Limit(start: 0, end: 2))
        let maximum = configuration.maximumResults
        let executor = self.executor
        let hook = hooks[table.index]?.delete
        let info = hook == nil ? nil : Self.resourceRequest(request, context)
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
                if let hook, let info, let current = try txn.get(table, row.id) { try hook(current.record, txn, info) }
                try txn.delete(table, id: row.id)
            }
            return rows.count
        }
        var headers: HTTPFields = [.contentType: "application/json"]
        Self.describe(plan, started: nil, into: &headers)
        warnUndeclared(query, table: table, into: &headers)
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: "{\"deleted\":\(count)}")))
    }

    func parseQuery(_ request: Request, table: TableLayout) throws -> Query {
        let raw = request.uri.query ?? ""
        guard raw.utf8.count <= configuration.maximumQueryLength else {
            throw Problem(.uriTooLong, "the query string is \(raw.utf8.count) bytes; the limit is \(configuration.maximumQueryLength)")
        }
        let query = try QueryParser.parse(raw).bound(to: table.definition, schema: store.schema)
        if let limit = query.limit, limit.count > configuration.maximumResults {
            throw Problem(.badRequest, "limit(\(limit.count)) is above the maximum of \(configuration.maximumResults) records per query")
        }
        if !configuration.allowFullScans {
            let plan = executor.plan(query, table: table)
            if plan.isFullScan {
                throw Problem(
                    .badRequest,
                    "this query needs a full scan (no index serves its conditions) and full scans are disabled; "
                        + "index the attributes it filters on with @indexed")
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

    /// Reads a key from a path segment, as the table's primary key type says.
    public func recordID(_ segment: String, table: TableLayout) throws -> RecordID {
        let name = table.definition.exportName ?? table.name
        let text: String
        do {
            text = try PathSegment.decode(segment)
        } catch {
            throw Problem(.badRequest, "the key in /\(name)/\(segment) has \(error.description)", extensions: ["code": "invalidID"])
        }
        let pk = table.definition.primaryKeyAttribute
        guard let id = RecordID(text: text, type: pk.type) else {
            let reason = pk.type == .int || pk.type == .long ? nil : RecordID.keyTextProblem(text)
            throw Problem(
                .badRequest, "'\(segment)' is not a valid \(pk.type) key for \(name): \(reason ?? "expected \(RecordID.keyKind(pk.type))")",
                extensions: ["code": "invalidID"])
        }
        return id
    }

    static func notFound(_ table: TableLayout, _ id: RecordID) -> Problem {
        Problem(.notFound, "\(table.definition.exportName ?? table.name)/\(id) does not exist")
    }

    static func location(_ table: TableLayout, _ id: RecordID) -> String {
        let text = id.description
        // Most keys (UUIDs, numbers, slugs) need no escaping: checked byte by byte, without Foundation.
        let segment =
            text.utf8.allSatisfy(isSegmentByte) ? text : text.addingPercentEncoding(withAllowedCharacters: segmentAllowed) ?? text
        return "/\(table.definition.exportName ?? table.name)/\(segment)"
    }

    /// What a path segment may hold unescaped: the URL path characters but `/`.
    private static let segmentAllowed = CharacterSet.urlPathAllowed.subtracting(["/"])

    /// Whether `byte` is an unreserved ASCII character (RFC 3986), all of which ``segmentAllowed`` holds.
    private static func isSegmentByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "~")
        }
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
