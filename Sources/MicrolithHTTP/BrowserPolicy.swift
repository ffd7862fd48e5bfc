import Foundation

/// What a browser may make the server do on behalf of a page from elsewhere: the checks that
/// stop DNS rebinding and cross-site writes, applied to every request on the HTTP port (the
/// event-loop fast path, the router, WebSocket and MQTT-over-WebSocket upgrades).
///
/// - **Host allow-list.** A request whose `Host` names a host not allowed is refused (`403`,
///   `hostNotAllowed`). Allowed by default: IP addresses and names without a dot (`localhost`, a
///   container's service name), since a rebinding attack needs a public DNS name it controls,
///   and names under `.localhost`; more names with ``allowedHosts`` (`*` allows every name). A
///   request without `Host` is not refused here.
/// - **Cross-origin writes.** A `POST`, `PUT`, `PATCH` or `DELETE` (any method but `GET`, `HEAD`
///   and `OPTIONS`), and every WebSocket upgrade, is refused (`403`, `crossOriginRequest`) when its
///   `Origin` is not the server's own (the same host and port as `Host`) and not in
///   ``allowedOrigins``, or, with no `Origin`, when `Sec-Fetch-Site` says `cross-site` or
///   `same-site`. A page elsewhere can then neither write through a simple form or `fetch` nor
///   open a WebSocket; clients that are not browsers send neither header and are not affected.
///   On a server that speaks HTTPS (``secure``) the server's own origin is its `https://` one: a
///   page injected into plain `http://` under the same name is another origin.
public struct BrowserPolicy: Sendable {
    /// Host names allowed besides IP addresses and names without a dot (lowercase, no port); `*` allows all.
    public var allowedHosts: [String]
    /// Origins allowed to write and open WebSockets besides the server's own
    /// (`https://app.example.com`, scheme and host, and the port when not the default); `*` allows all.
    public var allowedOrigins: [String]
    /// Whether the server is reached over HTTPS only: its own pages then have `https://` origins.
    public var secure: Bool

    public init(allowedHosts: [String] = [], allowedOrigins: [String] = [], secure: Bool = false) {
        self.allowedHosts = allowedHosts.map { Self.normalizedHost($0) }
        self.allowedOrigins = allowedOrigins.map { $0.lowercased().trimmingTrailingSlash }
        self.secure = secure
    }

    /// Why a request is refused: a status, a stable code and a sentence for people.
    public struct Refusal: Sendable, Equatable {
        public var status: Int
        public var code: String
        public var detail: String
    }

    /// Whether `authority` (the `Host` header: a name or address, maybe a port) is allowed.
    public func allowsHost(_ authority: String?) -> Bool {
        guard var authority, !authority.isEmpty else { return true }
        // Read in place, with no string made: this runs for every request, fast paths included.
        if authority.withUTF8({ Self.isAlwaysAllowed(authority: $0) }) { return true }
        guard !allowedHosts.isEmpty else { return false }
        return allowedHosts.contains("*") || allowedHosts.contains(Self.normalizedHost(Self.hostPart(of: authority)))
    }

    /// Whether `origin` (an `Origin` header) is one ``allowedOrigins`` lets in, so its requests
    /// get CORS headers.
    public func allowsCrossOrigin(_ origin: String) -> Bool {
        allowedOrigins.contains("*") || allowedOrigins.contains(origin.lowercased().trimmingTrailingSlash)
    }

    /// Whether a request may be answered ahead of the router (the fast paths): its host is
    /// allowed, and it needs no CORS headers (no `Origin`, or no origins allowed to read).
    public func answersInPlace(authority: String?, origin: String?) -> Bool {
        allowsHost(authority) && (origin == nil || allowedOrigins.isEmpty)
    }

    /// The refusal of a request with `method`, `Host` `authority`, and the browser's `Origin` and
    /// `Sec-Fetch-Site` headers (`upgrade` for a WebSocket upgrade), or `nil` to serve it.
    public func refusal(method: String, authority: String?, origin: String?, fetchSite: String?, upgrade: Bool = false) -> Refusal? {
        if !allowsHost(authority) {
            let host = Self.hostPart(of: authority ?? "")
            return Refusal(
                status: 403, code: "hostNotAllowed",
                detail: "the Host '\(host)' is not one this server answers to; add it to http.allowedHosts (MICROLITH_HTTP_ALLOWED_HOSTS) "
                    + "if the server is reached under that name")
        }
        if !upgrade, Self.isSafe(method) { return nil }
        let what = upgrade ? "a WebSocket" : "a \(method.uppercased()) request"
        if let origin {
            let normalized = origin.lowercased().trimmingTrailingSlash
            if allowsCrossOrigin(normalized) { return nil }
            if let authority, !secure || normalized.hasPrefix("https://"),
                Self.originAuthority(normalized) == Self.normalizedAuthority(authority)
            {
                return nil
            }
            return Refusal(
                status: 403, code: "crossOriginRequest",
                detail: "\(what) from a page of origin '\(origin)' is refused: only the server's own pages and the origins "
                    + "in http.allowedOrigins (MICROLITH_HTTP_ALLOWED_ORIGINS) may write or open WebSockets")
        }
        if let site = fetchSite?.lowercased(), site == "cross-site" || site == "same-site" {
            return Refusal(
                status: 403, code: "crossOriginRequest",
                detail: "\(what) from another site (Sec-Fetch-Site: \(site)) is refused: only the server's own pages may write "
                    + "or open WebSockets")
        }
        return nil
    }

    // MARK: Parsing

    /// Whether `method` is `GET`, `HEAD` or `OPTIONS` (in any case).
    static func isSafe(_ method: String) -> Bool {
        switch method {
        case "GET", "HEAD", "OPTIONS": return true
        case "POST", "PUT", "PATCH", "DELETE": return false
        default:
            switch method.uppercased() {
            case "GET", "HEAD", "OPTIONS": return true
            default: return false
            }
        }
    }

    /// Whether the host of `authority` (UTF-8, maybe with a port) is allowed whatever the
    /// configuration: an IP address, a name without a dot (a rebinding page needs a name in public
    /// DNS, which has one) or a name under `.localhost`; trailing dots and case do not count.
    static func isAlwaysAllowed(authority bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        let dot = UInt8(ascii: ".")
        if bytes.first == UInt8(ascii: "[") {
            guard let close = bytes.firstIndex(of: UInt8(ascii: "]")), close > 1 else { return false }
            for i in 1..<close {
                let b = bytes[i]
                guard ASCIIBytes.isHexDigit(b) || b == UInt8(ascii: ":") || b == dot else { return false }
            }
            return true
        }
        var end = bytes.lastIndex(of: UInt8(ascii: ":")) ?? bytes.count
        while end > 0, bytes[end - 1] == dot { end -= 1 }
        let host = UnsafeBufferPointer(rebasing: bytes[0..<end])
        guard host.contains(dot) else { return true }
        if host.count > 10, ASCIIBytes.hasSuffix(host, lowercase: ".localhost") { return true }
        return isIPv4(host)
    }

    /// Whether `host` is a dotted-quad IPv4 address.
    static func isIPv4(_ host: some Sequence<UInt8>) -> Bool {
        var parts = 0
        var digits = 0
        var value = 0
        for b in host {
            if b == UInt8(ascii: ".") {
                guard digits > 0, value <= 255 else { return false }
                parts += 1
                digits = 0
                value = 0
            } else if b >= UInt8(ascii: "0"), b <= UInt8(ascii: "9") {
                digits += 1
                guard digits <= 3 else { return false }
                value = value * 10 + Int(b - UInt8(ascii: "0"))
            } else {
                return false
            }
        }
        return parts == 3 && digits > 0 && value <= 255
    }

    /// The host of an authority without its port (`[::1]:80` → `[::1]`, `a.b:80` → `a.b`).
    static func hostPart(of authority: String) -> String {
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return authority }
            return String(authority[...close])
        }
        guard let colon = authority.lastIndex(of: ":") else { return authority }
        return String(authority[..<colon])
    }

    /// A host name lowercased, without a trailing dot.
    static func normalizedHost(_ host: String) -> String {
        var h = host.lowercased()
        while h.hasSuffix(".") { h.removeLast() }
        return h
    }

    /// `host:port` of an authority, lowercased (a default port as given: `Host` and `Origin` both omit it).
    static func normalizedAuthority(_ authority: String) -> String {
        var a = authority.lowercased()
        if a.hasSuffix(":80") || a.hasSuffix(":443") {
            // Browsers leave the default port out of Origin; some clients put it in Host.
            a = String(a[..<a.lastIndex(of: ":")!])
        }
        let host = hostPart(of: a)
        return normalizedHost(host) + a.dropFirst(host.count)
    }

    /// The authority of an origin (`http://a.b:8080` → `a.b:8080`), or `nil` for `null` and the like.
    static func originAuthority(_ origin: String) -> String? {
        guard let scheme = origin.range(of: "://") else { return nil }
        return normalizedAuthority(String(origin[scheme.upperBound...]))
    }
}

extension String {
    fileprivate var trimmingTrailingSlash: String {
        var s = self
        while s.hasSuffix("/") { s.removeLast() }
        return s
    }
}
