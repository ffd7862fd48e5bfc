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
public struct BrowserPolicy: Sendable {
    /// Host names allowed besides IP addresses and names without a dot (lowercase, no port); `*` allows all.
    public var allowedHosts: [String]
    /// Origins allowed to write and open WebSockets besides the server's own
    /// (`https://app.example.com`, scheme and host, and the port when not the default); `*` allows all.
    public var allowedOrigins: [String]

    public init(allowedHosts: [String] = [], allowedOrigins: [String] = []) {
        self.allowedHosts = allowedHosts.map { Self.normalizedHost($0) }
        self.allowedOrigins = allowedOrigins.map { $0.lowercased().trimmingTrailingSlash }
    }

    /// Why a request is refused: a status, a stable code and a sentence for people.
    public struct Refusal: Sendable, Equatable {
        public var status: Int
        public var code: String
        public var detail: String
    }

    /// Whether `authority` (the `Host` header: a name or address, maybe a port) is allowed.
    public func allowsHost(_ authority: String?) -> Bool {
        guard let authority, !authority.isEmpty else { return true }
        let host = Self.normalizedHost(Self.hostPart(of: authority))
        // A rebinding page needs a name in public DNS: a name with no dot cannot be one.
        if !host.contains(".") || host.hasSuffix(".localhost") || Self.isIPAddress(host) { return true }
        return allowedHosts.contains("*") || allowedHosts.contains(host)
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
        let safe = ["GET", "HEAD", "OPTIONS"].contains(method.uppercased()) && !upgrade
        guard !safe else { return nil }
        let what = upgrade ? "a WebSocket" : "a \(method.uppercased()) request"
        if let origin {
            let normalized = origin.lowercased().trimmingTrailingSlash
            if allowsCrossOrigin(normalized) { return nil }
            if let authority, Self.originAuthority(normalized) == Self.normalizedAuthority(authority) { return nil }
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

    /// Whether `host` is an IPv4 address or a bracketed IPv6 address.
    static func isIPAddress(_ host: String) -> Bool {
        if host.hasPrefix("["), host.hasSuffix("]") {
            let inner = host.dropFirst().dropLast()
            return !inner.isEmpty && inner.allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." }
        }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { p in !p.isEmpty && p.count <= 3 && p.allSatisfy(\.isASCIIDigit) && Int(p)! <= 255 }
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}

extension String {
    fileprivate var trimmingTrailingSlash: String {
        var s = self
        while s.hasSuffix("/") { s.removeLast() }
        return s
    }
}
