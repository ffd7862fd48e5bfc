/// One server of a client's list: `nats://[user:password@]host[:port]` or `host[:port]` (port
/// 4222 by default).
public struct NATSServerAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    /// Credentials written into the URL, if any (they win over the client's own).
    public var user: String?
    public var password: String?

    public init(host: String, port: Int = 4222, user: String? = nil, password: String? = nil) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
    }

    /// Reads `text`, or says why it is not a server address.
    public init(parsing text: String) throws(NATSError) {
        var rest = Substring(text)
        if let scheme = rest.firstRange(of: "://") {
            let name = rest[..<scheme.lowerBound].lowercased()
            guard name == "nats" else { throw NATSError(.invalid, "server '\(text)': the scheme must be nats://, got \(name)://") }
            rest = rest[scheme.upperBound...]
        }
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        var user: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                user = String(credentials[..<colon])
                password = String(credentials[credentials.index(after: colon)...])
            } else {
                user = String(credentials)
            }
        }
        var host = rest
        var port = 4222
        if rest.hasPrefix("[") {
            // [IPv6]:port
            guard let close = rest.firstIndex(of: "]") else { throw NATSError(.invalid, "server '\(text)': an IPv6 address lacks its ']'") }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.first == ":", let p = Int(after.dropFirst()) else {
                    throw NATSError(.invalid, "server '\(text)': the port is not a number")
                }
                port = p
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            guard let p = Int(rest[rest.index(after: colon)...]) else { throw NATSError(.invalid, "server '\(text)': the port is not a number") }
            port = p
        }
        guard !host.isEmpty, !host.contains(where: { $0 == "/" || $0 == " " }) else { throw NATSError(.invalid, "server '\(text)' names no host") }
        guard (1...65535).contains(port) else { throw NATSError(.invalid, "server '\(text)': the port must be 1 to 65535, got \(port)") }
        self.init(host: String(host), port: port, user: user, password: password)
    }

    public var description: String { "nats://\(host.contains(":") ? "[\(host)]" : host):\(port)" }
}
