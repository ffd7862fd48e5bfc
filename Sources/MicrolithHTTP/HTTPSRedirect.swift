import HTTPTypes
public import Hummingbird

/// The responder of the plain-HTTP port (`http.redirectPort`) of a server that serves HTTPS:
/// every request gets `308 Permanent Redirect` to the same path and query on HTTPS, at the host
/// the request named (a `Host` the ``BrowserPolicy`` allows, checked before this runs) and the
/// HTTPS port. `308` keeps the method and body, so a form posted to the old address is posted
/// again, over TLS. A request without a usable `Host` gets a `400` problem.
public struct HTTPSRedirect: HTTPResponder {
    public typealias Context = BasicRequestContext

    /// The HTTPS port, once it is bound (`nil` before: a `503` asks the client to retry).
    let httpsPort: @Sendable () -> Int?

    public init(httpsPort: @escaping @Sendable () -> Int?) {
        self.httpsPort = httpsPort
    }

    public func respond(to request: Request, context: Context) async throws -> Response {
        guard let authority = request.head.authority, let host = Self.host(of: authority) else {
            return Problem(
                .badRequest, "this port only redirects to HTTPS, and the request has no Host header (or an unusable one) to redirect to",
                code: "hostRequired"
            ).makeResponse()
        }
        guard let port = httpsPort() else {
            return Problem(.serviceUnavailable, "HTTPS is not listening yet; retry in a moment", headers: [.retryAfter: "1"]).makeResponse()
        }
        let location = Self.location(host: host, port: port, target: request.head.path ?? "/")
        return Response(
            status: .permanentRedirect, headers: [.location: location, .contentLength: "0", .cacheControl: "no-store"], body: ResponseBody())
    }

    /// `https://host[:port]/target`, the port left out when it is 443.
    static func location(host: String, port: Int, target: String) -> String {
        "https://\(host)\(port == 443 ? "" : ":\(port)")\(target.hasPrefix("/") ? target : "/")"
    }

    /// The host of a `Host` header, without its port, when it is a plain name, an IPv4 address or
    /// a bracketed IPv6 address (nothing that could change the meaning of the redirect's URL).
    static func host(of authority: String) -> String? {
        let host = BrowserPolicy.hostPart(of: authority)
        guard !host.isEmpty, host.utf8.count <= 255 else { return nil }
        if host.hasPrefix("[") {
            let inner = host.utf8.dropFirst().dropLast()
            guard host.hasSuffix("]"), !inner.isEmpty,
                inner.allSatisfy({ $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") || ASCIIBytes.isHexDigit($0) })
            else { return nil }
            return host
        }
        let allowed = host.utf8.allSatisfy { b in
            (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z"))
                || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || b == UInt8(ascii: "-") || b == UInt8(ascii: ".")
        }
        return allowed ? host : nil
    }

}
