import Foundation

/// What a client says of itself in `CONNECT`: how it signs in and what it can do.
public struct NATSConnectOptions: Sendable, Equatable, Encodable {
    /// The name the server shows for this connection (monitoring, logs).
    public var name: String?
    public var user: String?
    public var password: String?
    public var token: String?
    /// Whether the server sends this connection the messages it publishes itself.
    public var echo: Bool
    public var verbose: Bool
    public var pedantic: Bool
    public var tlsRequired: Bool
    /// Headers (`HPUB`/`HMSG`) are used.
    public var headers: Bool
    /// A request nobody subscribes to is answered with status 503 at once, instead of a timeout.
    public var noResponders: Bool
    public var lang: String
    public var version: String
    public var `protocol`: Int

    /// Options with no credentials: headers and no-responders on, echo on.
    public init(name: String? = nil, user: String? = nil, password: String? = nil, token: String? = nil, echo: Bool = true) {
        self.name = name
        self.user = user
        self.password = password
        self.token = token
        self.echo = echo
        self.verbose = false
        self.pedantic = false
        self.tlsRequired = false
        self.headers = true
        self.noResponders = true
        self.lang = "swift"
        self.version = "microlith"
        self.protocol = 1
    }

    enum CodingKeys: String, CodingKey {
        case name, user, password = "pass", token = "auth_token", echo, verbose, pedantic, tlsRequired = "tls_required"
        case headers, noResponders = "no_responders", lang, version, `protocol`
    }

    /// The JSON of the `CONNECT` line (keys sorted, so the same options give the same bytes).
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding strings, booleans and integers cannot fail.
        let data = (try? encoder.encode(self)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}
