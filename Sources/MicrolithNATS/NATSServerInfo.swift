import Foundation

/// What a server says of itself in `INFO`: sent first on every connection and again when the
/// cluster around it changes.
public struct NATSServerInfo: Sendable, Equatable, Decodable {
    public var serverID: String
    public var serverName: String?
    public var version: String
    public var proto: Int?
    public var host: String?
    public var port: Int?
    /// Whether the server takes `HPUB` and sends `HMSG`.
    public var headers: Bool
    /// The largest payload the server takes.
    public var maxPayload: Int
    public var authRequired: Bool
    public var tlsRequired: Bool
    /// Other servers of its cluster a client may connect to (`host:port`).
    public var connectURLs: [String]
    /// Whether JetStream is enabled.
    public var jetStream: Bool
    /// The server is shutting down (lame duck mode): clients should move elsewhere.
    public var lameDuckMode: Bool
    public var clientID: UInt64?

    enum CodingKeys: String, CodingKey {
        case serverID = "server_id", serverName = "server_name", version, proto, host, port, headers
        case maxPayload = "max_payload", authRequired = "auth_required", tlsRequired = "tls_required"
        case connectURLs = "connect_urls", jetStream = "jetstream", lameDuckMode = "ldm", clientID = "client_id"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        serverID = try c.decodeIfPresent(String.self, forKey: .serverID) ?? ""
        serverName = try c.decodeIfPresent(String.self, forKey: .serverName)
        version = try c.decodeIfPresent(String.self, forKey: .version) ?? ""
        proto = try c.decodeIfPresent(Int.self, forKey: .proto)
        host = try c.decodeIfPresent(String.self, forKey: .host)
        port = try c.decodeIfPresent(Int.self, forKey: .port)
        headers = try c.decodeIfPresent(Bool.self, forKey: .headers) ?? false
        maxPayload = try c.decodeIfPresent(Int.self, forKey: .maxPayload) ?? 1 << 20
        authRequired = try c.decodeIfPresent(Bool.self, forKey: .authRequired) ?? false
        tlsRequired = try c.decodeIfPresent(Bool.self, forKey: .tlsRequired) ?? false
        connectURLs = try c.decodeIfPresent([String].self, forKey: .connectURLs) ?? []
        jetStream = try c.decodeIfPresent(Bool.self, forKey: .jetStream) ?? false
        lameDuckMode = try c.decodeIfPresent(Bool.self, forKey: .lameDuckMode) ?? false
        clientID = try c.decodeIfPresent(UInt64.self, forKey: .clientID)
    }

    /// Reads the JSON of an `INFO` line.
    public static func parse(_ json: [UInt8]) throws(NATSProtocolError) -> NATSServerInfo {
        do {
            return try JSONDecoder().decode(NATSServerInfo.self, from: Data(json))
        } catch {
            throw NATSProtocolError("INFO is not the JSON object it should be: \(error)")
        }
    }
}
