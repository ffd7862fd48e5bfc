import Hummingbird
import MicrolithHTTP
import MicrolithTables
import NIOCore

/// `GET /metrics`: the server's metrics in the Prometheus text format, for a super user (a
/// scraper signs in with HTTP Basic or a bearer token). Off with `metrics.enabled: false`.
enum MetricsRoutes {
    static func add(to router: Router<MicrolithRequestContext>, server: MicrolithServer, metrics: ServerMetrics) {
        let access = server.access
        router.get("/metrics") { _, _ -> Response in
            try access.authorize(.superUser, to: "read the metrics", for: Principal.current)
            let bytes = try await metrics.render(server)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
        }
    }
}
