public import MicrolithStore

/// A request refused because none of its principal's roles allows it: a verb on a table, a module
/// operation, an administrative endpoint. HTTP 401 without credentials, 403 (code `forbidden`) with
/// them; MQTT 0x87 (not authorized).
public struct AccessDenied: StatusCodedError, Sendable, Equatable, CustomStringConvertible {
    /// What was refused, as the end of "… may not": `update Price records`, `call pricing.setPrice`.
    public let action: String
    /// Who asked.
    public let principal: Principal

    /// `principal` may not `verb` records of `table`.
    public init(verb: TableVerb, table: TableLayout, principal: Principal) {
        let name = TableDirectory.displayName(table)
        self.init(action: "\(verb.rawValue) \(verb == .publish || verb == .subscribe ? "to " : "")\(name) records", principal: principal)
    }

    /// `principal` may not do `action` (worded to follow "may not").
    public init(action: String, principal: Principal) {
        self.action = action
        self.principal = principal
    }

    public var status: Int { 403 }

    public var message: String { "\(principal) may not \(action)" }

    public var description: String { message }
}
