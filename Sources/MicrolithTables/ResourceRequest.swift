import Foundation

/// The request a hook or resource serves: what the client sent, minus the body.
public struct ResourceRequest: Sendable {
    /// `GET`, `PUT`, ...
    public var method: String
    /// The path, without the query.
    public var path: String
    /// The raw query string (without `?`), or `nil`.
    public var query: String?
    /// The query's `name=value` pairs, percent-decoded (the last one wins for a repeated name);
    /// parsed when asked for, from ``query``.
    public var queryItems: [String: String] {
        var items: [String: String] = [:]
        for pair in (query ?? "").split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let decode = { (s: Substring) in s.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(s) }
            items[decode(kv[0])] = kv.count == 2 ? decode(kv[1]) : ""
        }
        return items
    }
    /// Path parameters (`{id}` in a resource's path), by name.
    public var parameters: [String: String]
    /// Request headers, names lower-cased (repeated ones joined with `, `).
    public var headers: [String: String]
    /// The request id (also in the `X-Request-Id` response header and in every log line).
    public var requestID: String
    /// The door the request came through: `http` (REST, resources, Server-Sent Events, WebSocket) or
    /// `mqtt` (a retained publish that writes a record; its ``headers`` then hold `mqtt-client-id`).
    public var transport: String
    /// Who made the request: the signed-in user and roles (the anonymous role without credentials),
    /// on every door. Set by the table layer before a hook runs.
    public var principal: Principal

    public init(
        method: String, path: String, query: String? = nil, parameters: [String: String] = [:], headers: [String: String] = [:],
        requestID: String = "", transport: String = "http", principal: Principal = .anonymous
    ) {
        self.method = method
        self.path = path
        self.query = query
        self.parameters = parameters
        self.headers = headers
        self.requestID = requestID
        self.transport = transport
        self.principal = principal
    }
}
