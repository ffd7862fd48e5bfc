/// Settings of the HTTP interface, with safe defaults. Every limit answers with a clear 4xx/503.
public struct HTTPConfiguration: Sendable {
    /// Address to bind (loopback by default).
    public var host: String
    /// Port to listen on (9926 by default, as Harper).
    public var port: Int
    /// Largest accepted request body in bytes (1 MiB); larger → 413.
    public var maximumBodyBytes: Int
    /// Longest accepted query string in bytes (8 KiB); longer → 414.
    public var maximumQueryLength: Int
    /// Most records one query may return (10,000); more → 400 asking for `limit(...)`.
    public var maximumResults: Int
    /// Most connections open at once on every port of the process, HTTP, WebSocket and MQTT
    /// together, counted from accept (4,096). Past it the connection idle for longest is closed
    /// to make room; with none idle, a new connection gets 503 and is closed. It is also kept
    /// below the process's open-file limit (see `FileDescriptorLimit`).
    public var maximumConnections: Int
    /// Most connections open at once from one peer address (4,096: no tighter than the total, since
    /// behind a proxy every client shares one address; set it lower when clients connect directly).
    public var maximumConnectionsPerAddress: Int
    /// Seconds a request head may take to arrive, counted from accept for a connection's first
    /// request and from the first byte for later ones (10); past it, 408 and close.
    public var headerTimeoutSeconds: Int
    /// The slowest average rate, in bytes per second, a request body may arrive at once
    /// ``headerTimeoutSeconds`` have passed since its head (1,024); below it, 408 and close.
    public var minimumBodyBytesPerSecond: Int
    /// Seconds a connection may stay silent (idle keep-alive, or a request that stops arriving)
    /// before it is closed; `0` never closes (60 by default).
    public var idleTimeoutSeconds: Int
    /// Connections the kernel may hold for the server before it accepts them, the listen backlog
    /// (4,096; Linux caps it at `net.core.somaxconn`). When a burst of new connections overflows
    /// it, the kernel drops their handshakes and clients retry after a second or more: a burst of
    /// thousands of clients (a deploy behind a load balancer, a reconnect storm) needs thousands.
    public var backlog: Int
    /// Host names the server answers to besides IP addresses and names without a dot such as
    /// `localhost` (empty by default;
    /// `*` allows every name): a request naming another host is refused, which stops DNS
    /// rebinding. See ``BrowserPolicy``.
    public var allowedHosts: [String]
    /// Origins whose pages may write and open WebSockets besides the server's own (none by
    /// default; `*` allows every origin). See ``BrowserPolicy``.
    public var allowedOrigins: [String]
    /// Whether a query whose conditions no index serves may run (it does, flagged in headers, by default).
    public var allowFullScans: Bool
    /// The folder of static files served for paths that are not tables (`web/`), if any.
    public var webRoot: String?
    /// The IP addresses of reverse proxies in front of the server (none by default): for a request
    /// through one of them, the client's address (what failed sign-ins are limited by) is read from
    /// `X-Forwarded-For` (see ``ClientAddress``). Without it, every client behind a proxy shares
    /// the proxy's address and its sign-in limit.
    public var trustedProxies: [String] = []
    /// The address whose failed sign-ins a request counts towards, given ``trustedProxies``.
    public var clientAddress: ClientAddress { ClientAddress(trustedProxies: trustedProxies) }
    /// A plain-HTTP port on ``host`` that answers every request with a `308` redirect to the same
    /// URL on HTTPS (``port``); `nil` (the default) opens none, 0 picks a free one. Needs TLS.
    public var redirectPort: Int?

    public init(
        host: String = "127.0.0.1",
        port: Int = 9926,
        maximumBodyBytes: Int = 1 << 20,
        maximumQueryLength: Int = 8192,
        maximumResults: Int = 10_000,
        maximumConnections: Int = 4096,
        maximumConnectionsPerAddress: Int = 4096,
        headerTimeoutSeconds: Int = 10,
        minimumBodyBytesPerSecond: Int = 1024,
        idleTimeoutSeconds: Int = 60,
        backlog: Int = 4096,
        allowedHosts: [String] = [],
        allowedOrigins: [String] = [],
        allowFullScans: Bool = true,
        webRoot: String? = nil
    ) {
        self.host = host
        self.port = port
        self.maximumBodyBytes = maximumBodyBytes
        self.maximumQueryLength = maximumQueryLength
        self.maximumResults = maximumResults
        self.maximumConnections = maximumConnections
        self.maximumConnectionsPerAddress = maximumConnectionsPerAddress
        self.headerTimeoutSeconds = headerTimeoutSeconds
        self.minimumBodyBytesPerSecond = minimumBodyBytesPerSecond
        self.idleTimeoutSeconds = idleTimeoutSeconds
        self.backlog = backlog
        self.allowedHosts = allowedHosts
        self.allowedOrigins = allowedOrigins
        self.allowFullScans = allowFullScans
        self.webRoot = webRoot
    }

    /// The browser-facing checks these settings make.
    public var browserPolicy: BrowserPolicy {
        BrowserPolicy(allowedHosts: allowedHosts, allowedOrigins: allowedOrigins, secure: secure)
    }
    /// Whether the port speaks HTTPS only (the runtime sets it when `tls.*` has a certificate): the
    /// server's own origin is then its `https://` one (see ``BrowserPolicy``).
    public var secure = false
}
