public import HTTPTypes
import Hummingbird
public import Logging
import MicrolithJSON
public import MicrolithStore
import MicrolithTables
public import NIOCore
public import Synchronization

/// Anonymous writes of one record run from the event loop by ``DirectWriteHandler``, ahead of the
/// router: which requests qualify, and the write and response for one.
///
/// A request qualifies only when the router would do exactly the same with it: the same write
/// (``TableAccess/put(_:_:body:precondition:for:request:)`` or
/// ``TableAccess/post(_:body:for:request:)`` for the anonymous role) and the same response (`201`
/// with `Location` for a new record, `200` for a replaced one; `Content-Type`, `ETag`,
/// `X-Request-Id`, `Date`, `Server`; a refusal as the router's `application/problem+json`). So it
/// must be a `PUT /{Table}/{id}` of a table that ``TableAccess/servesDirectPuts(_:)``, or a
/// `POST /{Table}/` of one that ``TableAccess/servesDirectPosts(_:)`` (no hook for the method; the
/// anonymous role may write it, and write and see every attribute), with a `Content-Length` body
/// within the size limit and labelled as JSON (or not labelled), no query string, and no header
/// other than `Host`, `Content-Length`, `Content-Type`, `Accept`, `Accept-Encoding`, `User-Agent`
/// and `Connection: keep-alive`: credentials, cookies, `Origin`, preconditions (`If-Match`),
/// `Expect`, `Connection: close`, `X-Replicate-To` or a client's `X-Request-Id` all send a request
/// to the router. So does every request while `bypassed` says so (requests logged one by one at
/// `debug`, or traced).
///
/// Such writes are counted in the request metrics as the router counts them (by route pattern),
/// and in ``answered`` or ``refused``; a refusal for a server error is logged as the router logs it.
public final class DirectWrites: Sendable {
    /// A qualifying request: its table, its record's key (`nil` for a `POST`) and its declared body length.
    public struct Target: Sendable {
        public let table: TableLayout
        public let id: RecordID?
        public let length: Int
    }

    let endpoint: TableEndpoint
    let serverName: String?
    private let recorder: (any RequestRecorder)?
    private let logger: Logger
    private let bypassed: @Sendable () -> Bool
    /// The metrics route patterns of each table (by table index), as the router labels them.
    private let routes: [[String]]
    private let date = Mutex(HTTPDate())
    /// Writes answered with the record.
    public let answered = Atomic<UInt64>(0)
    /// Writes answered with a problem (a body that is no JSON object, a record the schema refuses,
    /// a store that cannot write).
    public let refused = Atomic<UInt64>(0)

    /// Direct writes of `endpoint`'s tables, recorded in `recorder`, server errors logged to
    /// `logger`; none while `bypassed` returns `true` (checked per request).
    public init(
        endpoint: TableEndpoint, serverName: String? = nil, recorder: (any RequestRecorder)? = nil,
        logger: Logger = Logger(label: "microlith"), bypassed: @escaping @Sendable () -> Bool = { false }
    ) {
        self.endpoint = endpoint
        self.serverName = serverName
        self.recorder = recorder
        self.logger = logger
        self.bypassed = bypassed
        self.routes = endpoint.store.tables.map(TableRoutes.labels)
    }

    /// The record `head` writes when the request qualifies (judged on the head alone); `nil` when
    /// the router must answer it.
    public func target(_ head: HTTPRequest) -> Target? {
        guard head.method == .put || head.method == .post, let path = head.path, !path.utf8.contains(UInt8(ascii: "?")) else {
            return nil
        }
        var length: Int?
        for field in head.headerFields {
            switch field.name {
            case .contentLength:
                guard length == nil, let n = Int(field.value), n > 0, n <= endpoint.configuration.maximumBodyBytes else { return nil }
                length = n
            case .contentType:
                guard TableEndpoint.acceptsAsJSON(field.value.lowercased()) else { return nil }
            case .connection:
                // HTTP/1.1's default said aloud; `close` (and any other token) is the router's.
                guard field.value.lowercased() == "keep-alive" else { return nil }
            case .accept:
                guard !field.value.lowercased().contains("text/event-stream") else { return nil }
            case .acceptEncoding, .userAgent:
                continue
            default:
                return nil
            }
        }
        guard let length, !bypassed(), endpoint.directory.table(inPath: path) != nil,
            let target = try? endpoint.directory.target(path: path)
        else { return nil }
        switch (head.method, target.selection) {
        case (.put, .record(let id)) where endpoint.access.servesDirectPuts(target.table):
            return Target(table: target.table, id: id, length: length)
        case (.post, .collection) where endpoint.access.servesDirectPosts(target.table):
            return Target(table: target.table, id: nil, length: length)
        default:
            return nil
        }
    }

    /// Runs the write `target` and `body` ask for, and answers as the router would: with the
    /// stored record, or with the problem the router makes of the error.
    public func write(_ target: Target, body: ByteBuffer) async -> (HTTPResponse, ByteBuffer) {
        let started = ContinuousClock.now
        let access = endpoint.access
        let requestID = RequestID().description
        var fields: HTTPFields = [RequestLogMiddleware<MicrolithRequestContext>.requestID: requestID, .date: date.withLock { $0.current() }]
        if let serverName { fields[.server] = serverName }
        let method: HTTPRequest.Method = target.id == nil ? .post : .put
        // Only a hook or an error needs the path spelled out.
        let path = { target.id.map { TableDirectory.path(target.table, $0) } ?? "/\(TableDirectory.displayName(target.table))/" }
        let status: HTTPResponse.Status
        let bytes: ByteBuffer
        do {
            let object = try TableEndpoint.jsonObject(body)
            let request = { ResourceRequest(method: method.rawValue, path: path(), requestID: requestID, principal: .anonymous) }
            let stored: CachedRecord
            let created: Bool
            if let id = target.id {
                (stored, created) = try await access.put(target.table, id, body: object, for: .anonymous, request: request())
            } else {
                (stored, created) = (try await access.post(target.table, body: object, for: .anonymous, request: request()), true)
            }
            let record = access.withoutHidden(stored, table: target.table, verb: created ? .insert : .update, for: .anonymous)
            fields[.contentType] = "application/json"
            fields[.eTag] = record.etag
            if created { fields[.location] = TableDirectory.path(target.table, record.id) }
            status = created ? .created : .ok
            bytes = record.json
            answered.wrappingAdd(1, ordering: .relaxed)
        } catch {
            let problem = ProblemMiddleware<MicrolithRequestContext>.problem(for: error, requestID: requestID)
            ProblemMiddleware<MicrolithRequestContext>.log(error, as: problem, method: method, path: path(), logger: logger)
            fields.append(contentsOf: problem.headers)
            fields[.contentType] = "application/problem+json"
            status = problem.status
            bytes = ByteBuffer(bytes: JSONWriter.encode(problem.json))
            refused.wrappingAdd(1, ordering: .relaxed)
        }
        fields[.contentLength] = String(bytes.readableBytes)
        recorder?.record(
            method: method, route: routes[target.table.index][target.id == nil ? 0 : 1], status: status.code,
            duration: ContinuousClock.now - started)
        return (HTTPResponse(status: status, headerFields: fields), bytes)
    }
}
