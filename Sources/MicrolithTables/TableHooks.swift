public import MicrolithJSON
public import MicrolithStore

/// The hooks of one table, on JSON records: what ``TableAccess`` runs, whichever door a request
/// came through. Modules declare them in typed form (`TableHookBuilder` of MicrolithModules).
public struct TableHooks: Sendable {
    public typealias Write = @Sendable (JSONObject, JSONObject?, WriteTransaction, ResourceRequest) throws -> JSONObject
    /// The table's GraphQL type name (or table name).
    public let table: String
    /// The module that declared the hooks.
    public let module: String
    /// Shapes (or refuses) each record a client reads: one read, each row of a query.
    public package(set) var get: (@Sendable (JSONObject, ResourceRequest) throws -> JSONObject)?
    /// Refuses (or allows) a query before it runs.
    public package(set) var search: (@Sendable (ResourceRequest) throws -> Void)?
    /// Shapes (or refuses) a replacing write inside its transaction: new record, previous one.
    public package(set) var put: Write?
    /// Shapes (or refuses) a merged partial write inside its transaction.
    public package(set) var patch: Write?
    /// Shapes (or refuses) a new record with a generated key inside its transaction.
    public package(set) var post: Write?
    /// Refuses (or follows up) a delete inside its transaction, with the record being deleted.
    public package(set) var delete: (@Sendable (JSONObject, WriteTransaction, ResourceRequest) throws -> Void)?

    /// Hooks of `table` (type or table name) declared by `module`, none set yet.
    package init(table: String, module: String) {
        self.table = table
        self.module = module
    }
}
