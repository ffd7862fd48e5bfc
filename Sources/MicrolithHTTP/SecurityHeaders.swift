import HTTPTypes
public import Hummingbird

/// The headers every HTML page carries so a browser keeps it from being framed, sniffed or
/// leaking its address: `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY`, a
/// `Content-Security-Policy` that forbids framing, plugins and foreign `<base>` and form
/// targets (scripts and styles are the page's own business), and
/// `Referrer-Policy: strict-origin-when-cross-origin`; over HTTPS also
/// `Strict-Transport-Security: max-age=31536000` (a browser then uses HTTPS only for a year). A
/// header the application set itself is left as it is.
public enum SecurityHeaders {
    /// The headers, in the order they are added.
    public static let html: [(name: String, value: String)] = [
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Content-Security-Policy", "frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"),
        ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ]

    /// What an HTML page served over HTTPS carries besides ``html``.
    public static let strictTransportSecurity = (name: "Strict-Transport-Security", value: "max-age=31536000")

    /// The headers of an HTML page, over HTTPS (`secure`) or not.
    static func page(secure: Bool) -> [(name: String, value: String)] {
        secure ? html + [strictTransportSecurity] : html
    }

    /// ``page(secure:)`` with the names parsed once: the router's middleware adds them to every page.
    private static let pageFields = [false, true].map { secure in
        page(secure: secure).compactMap { name, value in HTTPField.Name(name).map { ($0, value) } }
    }

    /// Whether a response of `contentType` is an HTML page (it is asked of every response: no
    /// lowercased copy is made).
    public static func isHTML(_ contentType: String?) -> Bool {
        guard var contentType else { return false }
        return contentType.withUTF8 { ASCIIBytes.hasPrefix($0, lowercase: "text/html") }
    }

    /// `headers` with the page headers it lacks added, when it is an HTML response's.
    public static func adding(to headers: [(name: String, value: String)], secure: Bool = false) -> [(name: String, value: String)] {
        guard isHTML(headers.first(where: { $0.name.lowercased() == "content-type" })?.value) else { return headers }
        let present = Set(headers.map { $0.name.lowercased() })
        return headers + page(secure: secure).filter { !present.contains($0.name.lowercased()) }
    }

    /// Adds the page headers `fields` lacks when it is an HTML response's.
    public static func add(to fields: inout HTTPFields, secure: Bool = false) {
        guard isHTML(fields[.contentType]) else { return }
        for (field, value) in pageFields[secure ? 1 : 0] where fields[field] == nil {
            fields[field] = value
        }
    }
}

/// Adds ``SecurityHeaders`` to every HTML response the router gives (resources, static files).
public struct SecurityHeadersMiddleware<Context: RequestContext>: RouterMiddleware {
    let secure: Bool

    /// `secure`: the server speaks HTTPS, and pages also get `Strict-Transport-Security`.
    public init(secure: Bool = false) {
        self.secure = secure
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        SecurityHeaders.add(to: &response.headers, secure: secure)
        return response
    }
}
