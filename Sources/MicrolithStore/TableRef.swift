import GRDB
import MicrolithJSON
import MicrolithSchema

/// A table seen through a Swift type: records are read and written as `Record` values.
///
/// ```swift
/// struct Product: Codable, Sendable { var id: String; var name: String; var stock: Int }
/// let products = TableRef<Product>("Product")
///
/// try await store.write { txn in
///     guard var product = try txn.get(products, "p-1") else { throw ... }
///     product.stock -= 1
///     try txn.put(products, product)
/// }
/// ```
///
/// `name` is the table's GraphQL type name (or its table name in the default database). The
/// record's primary key is read from the encoded value, so `Record` must include it.
public struct TableRef<Record: Codable & Sendable>: Sendable, Hashable {
    /// The GraphQL type name (or table name) of the table.
    public let name: String

    /// The table declared as `type <name> @table`.
    public init(_ name: String) {
        self.name = name
    }

    /// The table's layout in `store`.
    /// - Throws: ``StoreError/Code/unknownTable`` when the schema declares no such table.
    public func layout(in store: Store) throws -> TableLayout {
        if let t = store.table(typeName: name) ?? store.table(name: name) { return t }
        let known = store.tables.map(\.definition.typeName).sorted().joined(separator: ", ")
        throw StoreError(.unknownTable, "no table named '\(name)' in the schema; tables: \(known.isEmpty ? "none" : known)")
    }

    /// The primary key of `record`, as the table's key type.
    func id(of object: JSONObject, table: TableLayout) throws -> RecordID {
        let pk = table.definition.primaryKeyAttribute
        guard let value = object[pk.name], let id = RecordID(json: value, type: pk.type) else {
            throw StoreError(
                .invalidID, "a \(Record.self) stored in \(table.name) needs its primary key '\(pk.name)' (\(RecordID.keyKind(pk.type)))",
                attribute: pk.name)
        }
        return id
    }

    /// `key` as a record id of the table's key type.
    /// - Throws: ``StoreError/Code/invalidID`` when `key` does not fit the table's primary key.
    public func id(_ key: RecordKey, table: TableLayout) throws -> RecordID {
        let pk = table.definition.primaryKeyAttribute
        guard let id = RecordID(json: key.json, type: pk.type) else {
            throw StoreError(.invalidID, "'\(key.json)' is not a valid primary key of \(table.name) (\(RecordID.keyKind(pk.type)))")
        }
        return id
    }
}

/// A primary key written as a Swift literal or value: a string or an integer.
public struct RecordKey: Sendable, Hashable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, CustomStringConvertible {
    enum Value: Hashable {
        case text(String)
        case number(Int64)
    }

    let value: Value

    /// A string key.
    public init(_ text: String) { value = .text(text) }
    /// An integer key.
    public init(_ number: Int) { value = .number(Int64(number)) }
    public init(stringLiteral value: String) { self.init(value) }
    public init(integerLiteral value: Int) { self.init(value) }
    /// The key of a stored record.
    public init(_ id: RecordID) {
        switch id.jsonValue {
        case .int(let n): value = .number(n)
        case .string(let s): value = .text(s)
        default: value = .text(id.description)
        }
    }

    var json: JSONValue {
        switch value {
        case .text(let s): return .string(s)
        case .number(let n): return .int(n)
        }
    }

    public var description: String {
        switch value {
        case .text(let s): return s
        case .number(let n): return String(n)
        }
    }
}

extension WriteTransaction {
    /// The record `key` of `table` as a `Record`, or `nil` when there is none.
    public func get<Record>(_ table: TableRef<Record>, _ key: RecordKey) throws -> Record? {
        let layout = try table.layout(in: store)
        guard let found = try get(layout, try table.id(key, table: layout)) else { return nil }
        return try RecordCoder.decode(Record.self, from: .object(found.record))
    }

    /// Replaces (or creates) the record with `record`'s primary key; returns it as stored
    /// (with computed attributes such as `@updatedTime`).
    @discardableResult
    public func put<Record>(_ table: TableRef<Record>, _ record: Record, precondition: WritePrecondition = .none) throws -> Record {
        let layout = try table.layout(in: store)
        let object = try RecordCoder.object(record)
        let stored = try put(layout, id: try table.id(of: object, table: layout), body: object, precondition: precondition)
        return try RecordCoder.decode(Record.self, from: .object(stored.record))
    }

    /// Creates `record`; fails with ``StoreError/Code/alreadyExists`` when its key is taken.
    @discardableResult
    public func insert<Record>(_ table: TableRef<Record>, _ record: Record) throws -> Record {
        let layout = try table.layout(in: store)
        let stored = try insert(layout, body: try RecordCoder.object(record))
        return try RecordCoder.decode(Record.self, from: .object(stored.record))
    }

    /// Reads record `key`, lets `change` modify it, and stores the result; returns `nil` (and
    /// writes nothing) when there is no such record.
    @discardableResult
    public func update<Record>(_ table: TableRef<Record>, _ key: RecordKey, _ change: (inout Record) throws -> Void) throws -> Record? {
        guard var record = try get(table, key) else { return nil }
        try change(&record)
        return try put(table, record)
    }

    /// Adds `amount` to the integer attribute `attribute` of record `key` (see
    /// ``add(_:id:attribute:amount:)``); returns the record after it, or `nil` when there is none.
    @discardableResult
    public func add<Record>(_ table: TableRef<Record>, _ key: RecordKey, _ attribute: String, _ amount: Int) throws -> Record? {
        let layout = try table.layout(in: store)
        guard let stored = try add(layout, id: try table.id(key, table: layout), attribute: attribute, amount: Int64(amount)) else { return nil }
        return try RecordCoder.decode(Record.self, from: .object(stored.record))
    }

    /// Every record of `table` (in key order, up to `limit`), read inside this transaction.
    /// A full scan: for large tables, query through an index instead.
    public func records<Record>(_ table: TableRef<Record>, limit: Int = Int.max) throws -> [Record] {
        let layout = try table.layout(in: store)
        let rows = try Row.fetchAll(
            db, sql: "SELECT id, data, version FROM \"\(layout.sqlName)\" ORDER BY id LIMIT ?", arguments: [min(limit, Int(Int64.max))])
        var result: [Record] = []
        for row in rows {
            guard let id = TableLayout.recordID(row[0]) else { continue }
            let record = try Store.decode(id: id, text: row[1], version: row[2])
            if let expiration = layout.definition.expiration, store.isExpired(record, expiration: expiration) { continue }
            result.append(try RecordCoder.decode(Record.self, from: .object(record.record)))
        }
        return result
    }

    /// Deletes record `key`; returns whether it existed.
    @discardableResult
    public func delete<Record>(_ table: TableRef<Record>, _ key: RecordKey) throws -> Bool {
        let layout = try table.layout(in: store)
        return try delete(layout, id: try table.id(key, table: layout))
    }
}

extension Store {
    /// The committed record `key` of `table` as a `Record` (from the cache when it is there).
    public func get<Record>(_ table: TableRef<Record>, _ key: RecordKey) async throws -> Record? {
        let layout = try table.layout(in: self)
        guard let found = try await get(layout, try table.id(key, table: layout)) else { return nil }
        return try found.decodedValue(Record.self) { try RecordCoder.decode(Record.self, from: .object(found.record)) }
    }
}
