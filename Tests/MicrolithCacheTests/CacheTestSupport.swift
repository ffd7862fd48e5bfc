import Foundation
import MicrolithCache
import MicrolithJSON
import MicrolithQuery
import MicrolithSchema
import MicrolithStore
import NIOCore

/// A store of products and reviews in a fresh temporary folder, with kept responses on it.
struct Shop {
    static let schema = """
        type Product @table {
            id: ID @primaryKey
            name: String
            category: String @indexed
            position: Int @indexed
            tags: [String] @indexed
        }

        type Review @table {
            id: ID @primaryKey
            productId: String @indexed
            rating: Int
        }

        type Session @table(expiration: 60) {
            id: ID @primaryKey
        }
        """

    let store: Store
    let kept: KeptResponses
    let folder: String
    let products: TableLayout
    let reviews: TableLayout

    init(limitBytes: Int = 8 << 20, wallClock: @escaping @Sendable () -> Int64 = HybridLogicalClock.systemMilliseconds) throws {
        folder = (NSTemporaryDirectory() as NSString).appendingPathComponent("microlith-cache-tests-\(UUID().uuidString)")
        let schema = try SchemaParser.parse(Self.schema, file: "schema.graphql")
        store = try Store.open(schema: schema, configuration: StoreConfiguration(directory: folder, durability: .normal, wallClock: wallClock))
        kept = KeptResponses(store: store, limitBytes: limitBytes)
        products = store.table(name: "Product")!
        reviews = store.table(name: "Review")!
    }

    func close() {
        store.close()
        try? FileManager.default.removeItem(atPath: folder)
    }

    @discardableResult
    func put(_ table: TableLayout, _ id: String, _ body: JSONObject) async throws -> CachedRecord {
        try await store.write { txn in try txn.put(table, id: .string(id), body: body) }
    }

    func delete(_ table: TableLayout, _ id: String) async throws {
        try await store.write { txn in _ = try txn.delete(table, id: .string(id)) }
    }

    /// The ids of `table`'s records matching `query` (REST query language), in order.
    func query(_ table: TableLayout, _ query: String) async throws -> [String] {
        let bound = try QueryParser.parse(query).bound(to: table.definition, schema: store.schema)
        let result = try await QueryExecutor(store: store).execute(bound, table: table)
        return result.rows.map { "\($0.id)" }
    }

    func name(_ id: String) async throws -> String {
        guard let record = try await store.get(products, .string(id)) else { return "-" }
        if case .string(let s)? = record.record["name"] { return s }
        return "?"
    }

    /// Runs `build` as a kept handler would run, and offers its text for `target`.
    @discardableResult
    func render(_ target: String, _ build: () async throws -> String) async throws -> (String, KeptResponses.Outcome) {
        let recording = kept.begin()
        let text = try await ReadObservation.$observer.withValue(recording) { try await build() }
        let response = CachedResponse(headers: [("Content-Type", "text/plain")], body: ByteBuffer(string: text))
        let outcome = kept.keep(response, for: target, recording: recording)
        let filled = try await kept.filled(response, recording: recording)
        return (String(buffer: filled.body), outcome)
    }

    /// The kept text for `target`, if any.
    func hit(_ target: String) -> String? {
        kept.response(for: target).map { String(buffer: $0.body) }
    }
}
