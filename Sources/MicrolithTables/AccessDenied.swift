public import MicrolithStore

/// A request refused because none of its principal's roles grants the verb on the table: HTTP 403
/// (code `forbidden`), MQTT 0x87 (not authorized).
public struct AccessDenied: StatusCodedError, Sendable, Equatable, CustomStringConvertible {
    /// What was refused.
    public let verb: TableVerb
    /// The table's export name (or name).
    public let table: String
    /// Who asked.
    public let principal: Principal

    public init(verb: TableVerb, table: TableLayout, principal: Principal) {
        self.verb = verb
        self.table = TableDirectory.displayName(table)
        self.principal = principal
    }

    public var status: Int { 403 }

    public var message: String {
        "\(principal) may not \(verb.rawValue) \(verb == .publish || verb == .subscribe ? "to " : "")\(table) records"
    }

    public var description: String { message }
}
