import MicrolithQuery
import MicrolithStore
import Synchronization

/// Queries of application code, parsed, bound and planned once per (table, text).
///
/// Operations run the same few query shapes over and over, but a text with a value written into it
/// (`position=gt=\(product.position)`) is new on almost every call. The cache keeps two generations:
/// a lookup tries the recent one, then the older one, and moves a hit found there back into the
/// recent one; when the recent one is full it becomes the older one and the older one is dropped.
/// Every call costs O(1), a text in steady use stays, and at most twice ``capacity`` queries are held.
///
/// (It used to evict "an arbitrary" entry, the dictionary's first. Always emptying the front of the
/// hash table packed the rest into one long probe run: with a stream of one-off texts a lookup
/// compared thousands of keys, 10 % of an uncached product page at 101,300 products.)
final class BoundQueries: Sendable {
    struct Key: Hashable {
        var table: Int
        var text: String
    }

    /// A query bound to its table, and its plan.
    struct Bound: Sendable {
        var query: Query
        var plan: QueryPlan
    }

    private struct Generations<Value> {
        var recent: [Key: Value] = [:]
        var older: [Key: Value] = [:]
    }

    private let generations = Mutex(Generations<Bound>())
    /// Parsed templates (``QueryTemplate``), by table and text; few, as they are written in code.
    private let templates = Mutex(Generations<QueryTemplate>())
    /// The queries the recent generation holds before it becomes the older one.
    let capacity: Int

    init(capacity: Int = 2048) {
        self.capacity = max(1, capacity)
    }

    /// `text` parsed and bound to `table`, and planned.
    /// - Throws: `QuerySyntaxError` or `QueryError`, as parsing and binding do.
    func query(_ text: String, table: TableLayout, store: Store) throws -> Bound {
        let key = Key(table: table.index, text: text)
        if let found = lookup(key) { return found }
        let query = try QueryParser.parse(text).bound(to: table.definition, schema: store.schema)
        let bound = Bound(query: query, plan: QueryExecutor(store: store).plan(query, table: table))
        generations.withLock { g in insert(bound, for: key, into: &g) }
        return bound
    }

    /// `template` with `arguments` in its placeholders, bound to `table` and planned. The
    /// template's text is parsed once. The bound and planned query is kept by its values too, as a
    /// text with the values written in would be: a query run with the same values again (a small
    /// catalogue's few hundred products) is neither bound nor planned again.
    /// - Throws: `QuerySyntaxError` or `QueryError`, as parsing, filling and binding do.
    func query(_ template: String, arguments: [QueryValue], table: TableLayout, store: Store) throws -> Bound {
        var text = template
        for argument in arguments { Self.append(argument, to: &text) }
        let filledKey = Key(table: table.index, text: text)
        if let found = lookup(filledKey) { return found }
        let key = Key(table: table.index, text: template)
        let parsed: QueryTemplate
        if let found = templates.withLock({ g in Self.lookup(key, in: &g, capacity: capacity) }) {
            parsed = found
        } else {
            parsed = try QueryParser.parseTemplate(template)
            templates.withLock { g in Self.insert(parsed, for: key, into: &g, capacity: capacity) }
        }
        let query = try parsed.filled(with: arguments).bound(to: table.definition, schema: store.schema)
        let bound = Bound(query: query, plan: QueryExecutor(store: store).plan(query, table: table))
        generations.withLock { g in insert(bound, for: filledKey, into: &g) }
        return bound
    }

    /// Appends `value` to a kept query's key, after a control character no query text holds
    /// unencoded, in a form no other value shares (its kind and length first).
    private static func append(_ value: QueryValue, to key: inout String) {
        key.append("\u{1}")
        switch value {
        case .untyped(let text):
            key.append("u\(text.utf8.count):")
            key.append(text)
        case .typed(let json):
            let text = String(describing: json)
            key.append("t\(text.utf8.count):")
            key.append(text)
        }
    }

    /// How many queries are held, in both generations.
    var count: Int {
        generations.withLock { $0.recent.count + $0.older.count }
    }

    /// Whether `text` for `table` is held, in either generation.
    func holds(_ text: String, table: TableLayout) -> Bool {
        let key = Key(table: table.index, text: text)
        return generations.withLock { $0.recent[key] != nil || $0.older[key] != nil }
    }

    private func lookup(_ key: Key) -> Bound? {
        generations.withLock { g in Self.lookup(key, in: &g, capacity: capacity) }
    }

    private func insert(_ bound: Bound, for key: Key, into g: inout Generations<Bound>) {
        Self.insert(bound, for: key, into: &g, capacity: capacity)
    }

    private static func lookup<Value>(_ key: Key, in g: inout Generations<Value>, capacity: Int) -> Value? {
        if let found = g.recent[key] { return found }
        guard let found = g.older.removeValue(forKey: key) else { return nil }
        insert(found, for: key, into: &g, capacity: capacity)
        return found
    }

    private static func insert<Value>(_ value: Value, for key: Key, into g: inout Generations<Value>, capacity: Int) {
        if g.recent.count >= capacity {
            g.older = g.recent
            g.recent = Dictionary(minimumCapacity: capacity)
        }
        g.recent[key] = value
    }
}
