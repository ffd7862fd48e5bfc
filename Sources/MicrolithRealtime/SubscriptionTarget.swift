public import MicrolithQuery
public import MicrolithStore

/// What a subscription follows: a record, a table, the records under an id prefix, or a query.
public enum SubscriptionTarget: Sendable {
    /// One record.
    case record(TableLayout, RecordID)
    /// Every record of the table.
    case table(TableLayout)
    /// The records whose (string) id starts with the prefix; ids containing `/` form a hierarchy.
    case prefix(TableLayout, String)
    /// The records matching the query's conditions; a record that stops matching gets a `delete`.
    /// Sorting, limits and projections of the query are ignored.
    case query(TableLayout, Query)

    /// The subscribed table.
    public var table: TableLayout {
        switch self {
        case .record(let t, _), .table(let t), .prefix(let t, _), .query(let t, _): return t
        }
    }

    /// Whether a write to `id` (its record after the write being `record`) concerns this target,
    /// ignoring query conditions (those need the subscription's matching set).
    func covers(_ id: RecordID) -> Bool {
        switch self {
        case .record(_, let wanted): return id == wanted
        case .table, .query: return true
        case .prefix(_, let prefix):
            guard case .string(let s) = id else { return String(describing: id).hasPrefix(prefix) }
            return s.hasPrefix(prefix)
        }
    }
}
