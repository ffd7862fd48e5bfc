/// What a caller must hold to use something that is not a table: a module operation, an
/// administrative endpoint. Checked against the principal's roles (``Roles``); a `super_user`
/// holds every permission.
public enum Permission: Sendable, Hashable, CustomStringConvertible {
    /// Anyone who may connect, the anonymous role included.
    case anyone
    /// Any signed-in user, whatever their roles.
    case signedIn
    /// A user holding one of these roles.
    case role(Set<String>)
    /// Whoever may `verb` the records of the table named (its export name or name).
    case table(String, TableVerb)
    /// A `super_user` only.
    case superUser

    /// A user holding `role`.
    public static func role(_ role: String) -> Permission { .role([role]) }

    public var description: String {
        switch self {
        case .anyone: return "anyone"
        case .signedIn: return "a signed-in user"
        case .role(let roles): return "the role\(roles.count == 1 ? "" : "s") \(roles.sorted().joined(separator: " or "))"
        case .table(let table, let verb): return "permission to \(verb.rawValue) \(table) records"
        case .superUser: return "the role \(Roles.superUser)"
        }
    }
}
