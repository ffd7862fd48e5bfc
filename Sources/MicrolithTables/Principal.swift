/// Who a request acts for: a user and the roles it holds, or nobody (the `anonymous` role).
public struct Principal: Sendable, Equatable, CustomStringConvertible {
    /// The user's name; `nil` for a request without credentials.
    public let user: String?
    /// The roles whose permissions the request has (any one granting a verb is enough).
    public let roles: [String]

    /// A user holding `roles`.
    public init(user: String?, roles: [String]) {
        self.user = user
        self.roles = roles
    }

    /// A request without credentials: the role named ``Roles/anonymous`` only.
    public static let anonymous = Principal(user: nil, roles: [Roles.anonymous])

    /// Who the request being served acts for: set by the HTTP server's authentication for the
    /// handling of each request with credentials; ``anonymous`` otherwise.
    @TaskLocal public static var current: Principal = .anonymous

    /// How messages name it: "the anonymous role", "user ada (roles: customer)".
    public var description: String {
        guard let user else { return roles == [Roles.anonymous] ? "the anonymous role" : "roles \(roles.joined(separator: ", "))" }
        return "user \(user) (roles: \(roles.isEmpty ? "none" : roles.joined(separator: ", ")))"
    }
}
