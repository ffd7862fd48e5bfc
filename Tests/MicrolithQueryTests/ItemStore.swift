import Foundation
import MicrolithJSON
import MicrolithQuery
import MicrolithSchema
import MicrolithStore
import Testing

/// Records as the planner tests hold them beside the store: the key and the whole record.
typealias ItemModel = [(id: Int64, record: JSONObject)]

/// Runs `body` with a store (in a new temporary folder, removed afterwards) of `schema`, whose
/// table `Item` (integer keys) holds `records`, and the records as the model sees them.
func withItemStore(
    schema text: String, records: [(id: Int64, body: JSONObject)], _ body: (Store, TableLayout, ItemModel) async throws -> Void
) async throws {
    let directory = (NSTemporaryDirectory() as NSString).appendingPathComponent("microlith-planner-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let schema = try SchemaParser.parse(text, file: "schema.graphql")
    let store = try Store.open(schema: schema, configuration: StoreConfiguration(directory: directory, durability: .normal))
    defer { store.close() }
    let table = try #require(store.table(exportName: "Item"))
    try await store.write { (txn: WriteTransaction) -> Void in
        for r in records { try txn.put(table, id: .int(r.id), body: r.body) }
    }
    let model = records.map { r -> (id: Int64, record: JSONObject) in
        var record = r.body
        record["id"] = .int(r.id)
        return (r.id, record)
    }
    try await body(store, table, model)
}

/// The answer computed without any plan: every record tested by the evaluator, sorted by the
/// evaluator's order (ties by key), then limited.
func planFreeAnswer(_ query: Query, _ model: ItemModel) -> [Int64] {
    var rows = model.filter { row in
        query.filter.map { QueryEvaluator.matches($0, record: row.record, resolve: QueryEvaluator.defaultResolve) } ?? true
    }
    rows.sort { a, b in
        for key in query.sort {
            let c = QueryEvaluator.compare(
                QueryEvaluator.defaultResolve(a.record, key.path), QueryEvaluator.defaultResolve(b.record, key.path))
            if c != 0 { return key.descending ? c > 0 : c < 0 }
        }
        return a.id < b.id
    }
    if let limit = query.limit { rows = Array(rows.dropFirst(limit.start).prefix(limit.count)) }
    return rows.map(\.id)
}
