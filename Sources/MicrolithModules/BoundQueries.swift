import MicrolithQuery
import MicrolithStore
import Synchronization

/// Queries of application code, parsed and bound once per (table, text): operations run the same
/// few query shapes over and over.
final class BoundQueries: Sendable {
    private let entries = Mutex<[String: Query]>([:])
    /// The most queries kept; past it an arbitrary one makes room.
    let capacity: Int

    init(capacity: Int = 4096) {
        self.capacity = capacity
    }

    /// `text` parsed and bound to `table`.
    /// - Throws: `QuerySyntaxError` or `QueryError`, as parsing and binding do.
    func query(_ text: String, table: TableLayout, store: Store) throws -> Query {
        let key = "\(table.index) \(text)"
        if let found = entries.withLock({ $0[key] }) { return found }
        let bound = try QueryParser.parse(text).bound(to: table.definition, schema: store.schema)
        entries.withLock { e in
            if e.count >= capacity, let any = e.keys.first { e[any] = nil }
            e[key] = bound
        }
        return bound
    }
}
