public import HTTPTypes
public import Hummingbird
import MicrolithStore
public import MicrolithTables

/// Where ``RequestMetricsMiddleware`` reports each request.
public protocol RequestRecorder: Sendable {
    /// One request answered through the router: its method, route (a pattern, never the raw
    /// path), status code, and the time from its head to its response.
    func record(method: HTTPRequest.Method, route: String, status: Int, duration: Duration)
}

/// Reports every request the router answers (errors included, as the status they got) to a
/// ``RequestRecorder``, labelled by a route of bounded variety: `/T/`, `/T/{id}` or `/T/{prefix}/`
/// for exported table `T`, the registered pattern for other routes (`/_operations/{module}/{name}`),
/// `static` for files and everything else no route names.
///
/// Answers given on the event loop ahead of the router (cache hits) do not pass here; the
/// ``CachedAnswers`` counters count them.
public struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let recorder: any RequestRecorder
    let directory: TableDirectory?
    /// Per table (by ``TableLayout/index``), its three labels, made once: collection, record, prefix.
    let labels: [Int: [String]]

    /// Reports to `recorder`; with `directory`, table URLs are labelled by table.
    public init(recorder: any RequestRecorder, directory: TableDirectory?) {
        self.recorder = recorder
        self.directory = directory
        var labels: [Int: [String]] = [:]
        for name in directory?.exportedNames ?? [] {
            guard let table = directory?.table(named: name) else { continue }
            labels[table.index] = TableRoutes.labels(table)
        }
        self.labels = labels
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        let response: Response
        do {
            response = try await next(request, context)
        } catch {
            // Inside RequestLogMiddleware nothing throws; outside it, this reports what it would.
            recorder.record(method: request.method, route: route(request, context), status: 500, duration: ContinuousClock.now - started)
            throw error
        }
        recorder.record(method: request.method, route: route(request, context), status: response.status.code, duration: ContinuousClock.now - started)
        return response
    }

    /// The route label of `request`.
    func route(_ request: Request, _ context: Context) -> String {
        let path = request.uri.path
        if let directory, let table = directory.table(inPath: path), let names = labels[table.index] {
            let rest = path.utf8.dropFirst(TableDirectory.displayName(table).utf8.count + 1)
            if rest.count <= 1 { return names[0] }
            return rest.last == UInt8(ascii: "/") ? names[2] : names[1]
        }
        // The table routes, and what no route matches, fall through to static files.
        if let pattern = context.endpointPath, pattern != "/{table}", pattern != "/{table}/{id}", pattern != "NotFound" { return pattern }
        return "static"
    }
}

/// The route patterns the request metrics label a table's URLs with (never a raw path or key).
enum TableRoutes {
    /// `table`'s collection, record and prefix patterns, in that order.
    static func labels(_ table: TableLayout) -> [String] {
        let name = TableDirectory.displayName(table)
        return ["/\(name)/", "/\(name)/{id}", "/\(name)/{prefix}/"]
    }
}
