public import HTTPTypes
import Hummingbird
import MicrolithJSON
public import MicrolithStore
import MicrolithTables
public import NIOCore
public import Synchronization

/// Anonymous `PUT /{Table}/{id}` writes run from the event loop by ``DirectWriteHandler``, ahead of
/// the router: which requests qualify, and the write and response for one.
///
/// A request qualifies only when the router would do exactly the same with it: the same write
/// (``TableAccess/put(_:_:body:precondition:for:request:)`` for the anonymous role) and the same
/// response (`201` with `Location` for a new record, `200` for a replaced one; `Content-Type`,
/// `ETag`, `X-Request-Id`, `Date`, `Server`). So it must be a `PUT` of one record of an exported
/// table that ``TableAccess/servesDirectPuts(_:)`` (no `put` hook; the anonymous role may insert,
/// update, write and see every attribute), with a `Content-Length` body within the size limit and
/// labelled as JSON (or not labelled), no query string, and no header other than `Host`,
/// `Content-Length`, `Content-Type`, `Accept`, `Accept-Encoding`, `User-Agent` and
/// `Connection: keep-alive`: credentials, cookies, `Origin`, preconditions (`If-Match`), `Expect`,
/// `Connection: close`, `X-Replicate-To` or a client's `X-Request-Id` all send a request to the
/// router. So does every request while
/// `bypassed` says so (requests logged one by one at `debug`, or traced).
///
/// Such writes are counted in the request metrics as the router counts them (by route pattern),
/// and in ``answered``.
public final class DirectWrites: Sendable {
    /// A qualifying request's record and declared body length.
    public struct Target: Sendable {
        public let table: TableLayout
        public let id: RecordID
        public let length: Int
    }

    let endpoint: TableEndpoint
    let serverName: String?
    private let recorder: (any RequestRecorder)?
    private let bypassed: @Sendable () -> Bool
    /// The metrics route pattern of each table's records (by table index), as the router labels it.
    private let routes: [String]
    private let date = Mutex(HTTPDate())
    /// Writes answered from the event loop.
    public let answered = Atomic<UInt64>(0)
    /// Writes the event loop tried and handed to the router, which answered with the error.
    public let handedOver = Atomic<UInt64>(0)

    /// Direct writes of `endpoint`'s tables, recorded in `recorder`; none while `bypassed` returns
    /// `true` (checked per request).
    public init(
        endpoint: TableEndpoint, serverName: String? = nil, recorder: (any RequestRecorder)? = nil,
        bypassed: @escaping @Sendable () -> Bool = { false }
    ) {
        self.endpoint = endpoint
        self.serverName = serverName
        self.recorder = recorder
        self.bypassed = bypassed
        self.routes = endpoint.store.tables.map { "/\(TableDirectory.displayName($0))/{id}" }
    }

    /// The record `head` writes when the request qualifies (judged on the head alone); `nil` when
    /// the router must answer it.
    public func target(_ head: HTTPRequest) -> Target? {
        guard head.method == .put, let path = head.path, !path.utf8.contains(UInt8(ascii: "?")) else { return nil }
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
            let target = try? endpoint.directory.target(path: path), case .record(let id) = target.selection,
            endpoint.access.servesDirectPuts(target.table)
        else { return nil }
        return Target(table: target.table, id: id, length: length)
    }

    /// Runs the write `target` and `body` ask for; the response, or `nil` when it failed (the body
    /// is no JSON object, the schema or a constraint refuses the record, the store cannot write),
    /// for the router to run it again and answer with the error. A `PUT` is idempotent: running
    /// it twice leaves what running it once does. (The one case where the first run may have
    /// written: a COMMIT that fails with an I/O error after its pages reached the log; the
    /// router's run then answers `200` for a record the client created.)
    public func put(_ target: Target, body: ByteBuffer) async -> (HTTPResponse, ByteBuffer)? {
        let started = ContinuousClock.now
        let access = endpoint.access
        do {
            let object = try TableEndpoint.jsonObject(body)
            let (stored, created) = try await access.put(
                target.table, target.id, body: object, for: .anonymous,
                request: ResourceRequest(
                    method: "PUT", path: TableDirectory.path(target.table, target.id), query: nil, headers: [:], requestID: "",
                    principal: .anonymous))
            let record = access.withoutHidden(stored, table: target.table, verb: created ? .insert : .update, for: .anonymous)
            var fields: HTTPFields = [
                .contentType: "application/json", .eTag: record.etag, .contentLength: String(record.json.readableBytes),
                RequestLogMiddleware<MicrolithRequestContext>.requestID: RequestID().description, .date: date.withLock { $0.current() },
            ]
            if created { fields[.location] = TableDirectory.path(target.table, target.id) }
            if let serverName { fields[.server] = serverName }
            let status: HTTPResponse.Status = created ? .created : .ok
            answered.wrappingAdd(1, ordering: .relaxed)
            recorder?.record(method: .put, route: routes[target.table.index], status: status.code, duration: ContinuousClock.now - started)
            return (HTTPResponse(status: status, headerFields: fields), record.json)
        } catch {
            handedOver.wrappingAdd(1, ordering: .relaxed)
            return nil
        }
    }
}
