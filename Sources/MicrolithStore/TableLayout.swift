package import GRDB
package import MicrolithJSON
public import MicrolithSchema

/// How a table is laid out in SQLite.
///
/// Per table: `r_<Table>(id PRIMARY KEY, data, version, origin, stamps, i_<attr>…)` holding the
/// record's JSON text, its version (hybrid logical clock), origin node and, when its attributes
/// were not all written by that one write, their ``RecordStamps``, plus one column and
/// index per scalar `@indexed` attribute (with `@indexed(sparse: true)`, a partial index
/// `WHERE i_<attr> IS NOT NULL`); one side table `a_<Table>_<attr>(value, id)` per
/// indexed list attribute, with a row for each element; one index `xc_<Table>__<a>__<b>…` over
/// the columns of each `@index(attributes:)`.
public struct TableLayout: Sendable {
    /// The table as the schema declares it.
    public let definition: MicrolithSchema.TableDefinition
    /// The table's position among all tables of the store; the record cache keys on it.
    public let index: Int
    /// The SQLite table holding the records.
    package let sqlName: String
    /// Scalar indexed attributes and their columns.
    package let scalarColumns: [(attribute: AttributeDefinition, column: String)]
    /// List indexed attributes and their side tables.
    package let listTables: [(attribute: AttributeDefinition, table: String)]
    /// The composite indexes (`@index(attributes:)`): the attributes in order, and the index name.
    package let compositeIndexes: [(attributes: [String], name: String)]
    /// The statement that stores a record: `id, data, version, origin, stamps`, then the scalar columns.
    let upsertSQL: String
    /// The statement that reads a record's text and version by key.
    let selectSQL: String
    /// The statement that reads a record's text, version, origin and attribute stamps by key.
    let selectStampSQL: String
    /// The statement that reads a record's origin and attribute stamps by key.
    let selectOriginSQL: String
    /// The statement that removes a record by key.
    let deleteSQL: String
    /// Per list table (in ``listTables`` order): the statements removing a record's rows and adding one.
    let listSQL: [(delete: String, insert: String)]

    init(definition: MicrolithSchema.TableDefinition, index: Int) {
        self.definition = definition
        self.index = index
        self.sqlName = "r_\(definition.name)"
        var scalar: [(AttributeDefinition, String)] = []
        var list: [(AttributeDefinition, String)] = []
        for a in definition.indexedAttributes {
            if a.type.isList {
                list.append((a, "a_\(definition.name)_\(a.name)"))
            } else {
                scalar.append((a, "i_\(a.name)"))
            }
        }
        self.scalarColumns = scalar
        self.listTables = list
        self.compositeIndexes = definition.compositeIndexes.map {
            ($0.attributes, Self.compositeIndexName(table: definition.name, attributes: $0.attributes))
        }
        let sqlName = self.sqlName
        let columns = (["id", "data", "version", "origin", "stamps"] + scalar.map(\.1)).map { "\"\($0)\"" }
        let placeholders = Array(repeating: "?", count: columns.count).joined(separator: ",")
        self.upsertSQL = "INSERT OR REPLACE INTO \"\(sqlName)\"(\(columns.joined(separator: ","))) VALUES (\(placeholders))"
        self.selectSQL = "SELECT data, version FROM \"\(sqlName)\" WHERE id = ?"
        self.selectStampSQL = "SELECT data, version, origin, stamps FROM \"\(sqlName)\" WHERE id = ?"
        self.selectOriginSQL = "SELECT origin, stamps FROM \"\(sqlName)\" WHERE id = ?"
        self.deleteSQL = "DELETE FROM \"\(sqlName)\" WHERE id = ?"
        self.listSQL = list.map { (_, table) in
            (delete: "DELETE FROM \"\(table)\" WHERE id = ?", insert: "INSERT INTO \"\(table)\"(value, id) VALUES (?, ?)")
        }
    }

    /// The table's name.
    public var name: String { definition.name }

    /// The column holding `attribute`, when it is a scalar indexed attribute.
    package func column(for attribute: String) -> String? {
        scalarColumns.first { $0.attribute.name == attribute }?.column
    }

    /// The name of the index on a scalar indexed attribute's column.
    package static func indexName(table: String, attribute: String) -> String {
        "x_\(table)_\(attribute)"
    }

    /// Whether `attribute` is a scalar indexed attribute whose index leaves out the records
    /// without a value (`@indexed(sparse: true)`).
    package func hasSparseIndex(_ attribute: String) -> Bool {
        scalarColumns.first { $0.attribute.name == attribute }?.attribute.isSparseIndex ?? false
    }

    /// Whether some index can find the records where `attribute` (a scalar indexed one) is null:
    /// its own when whole, or a composite index (always whole) that it leads.
    package func indexHoldsNulls(of attribute: String) -> Bool {
        !hasSparseIndex(attribute) || compositeIndexes.contains { $0.attributes.first == attribute }
    }

    /// The statement creating the index of a scalar indexed attribute (stored in column `column`).
    func createIndexSQL(attribute: AttributeDefinition, column: String) -> String {
        let partial = attribute.isSparseIndex ? " WHERE \"\(column)\" IS NOT NULL" : ""
        return "CREATE INDEX \"\(Self.indexName(table: name, attribute: attribute.name))\" ON \"\(sqlName)\"(\"\(column)\")\(partial)"
    }

    /// The name of a composite index over `attributes` (in order).
    package static func compositeIndexName(table: String, attributes: [String]) -> String {
        compositeIndexPrefix(table: table) + attributes.joined(separator: "__")
    }

    /// How the names of a table's composite indexes begin.
    package static func compositeIndexPrefix(table: String) -> String {
        "xc_\(table)__"
    }

    /// The side table holding `attribute`'s elements, when it is an indexed list attribute.
    package func sideTable(for attribute: String) -> String? {
        listTables.first { $0.attribute.name == attribute }?.table
    }

    /// The SQLite value an index holds for a JSON value: numbers, strings and booleans (as 0/1);
    /// `nil` (SQL NULL) for null, arrays and objects.
    package static func indexValue(_ value: JSONValue?) -> DatabaseValue {
        switch value {
        case .int(let i): return i.databaseValue
        case .double(let d): return d.databaseValue
        case .string(let s): return s.databaseValue
        case .bool(let b): return (b ? 1 : 0 as Int64).databaseValue
        default: return .null
        }
    }

    /// The SQLite value of a primary key.
    package static func keyValue(_ id: RecordID) -> DatabaseValue {
        switch id {
        case .string(let s): return s.databaseValue
        case .int(let i): return i.databaseValue
        }
    }

    /// Reads a primary key back from SQLite.
    package static func recordID(_ value: DatabaseValue) -> RecordID? {
        switch value.storage {
        case .int64(let i): return .int(i)
        case .string(let s): return .string(s)
        default: return nil
        }
    }

    /// A description of everything about the table that affects stored data; a change in it
    /// makes the store re-check existing records at start-up.
    var signature: String {
        var parts = ["pk=\(definition.primaryKey):\(definition.primaryKeyAttribute.type)", "sealed=\(definition.isSealed)"]
        for a in definition.attributes where a.relationship == nil {
            parts.append("\(a.name):\(a.type)\(a.isRequired ? "!" : "")\(a.isIndexed ? "@i" : "")")
        }
        return parts.joined(separator: ";")
    }

    /// A short digest of what a record of this table must look like (its primary key, whether
    /// it is sealed, and each attribute's name, type and whether it is required, in declaration
    /// order; not which are indexed, nor the shape of nested types): replication carries it with
    /// every change, so a node can tell that the origin declares the table otherwise, and say so.
    public var replicationDigest: String {
        var parts = ["\(definition.name)", "pk=\(definition.primaryKey):\(definition.primaryKeyAttribute.type)", "sealed=\(definition.isSealed)"]
        for a in definition.attributes where a.relationship == nil {
            parts.append("\(a.name):\(a.type)\(a.isRequired ? "!" : "")")
        }
        // FNV-1a, 64 bits: stable across processes and versions (Swift's Hasher is seeded).
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in parts.joined(separator: ";").utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// Writes the index rows (scalar columns are written with the record; this fills side tables).
    func writeListIndexes(_ db: Database, id: RecordID, record: JSONObject?) throws {
        try writeListIndexes(db, id: id, record: record, stored: nil, storedIsKnown: false)
    }

    /// Writes the side-table rows of `record` (`nil`: removes them), given `stored`, the record
    /// stored under `id` before this write (expired or not). When `storedIsKnown`, nothing is
    /// removed for a record that was not stored and an attribute whose elements did not change
    /// is left alone; otherwise the rows are rewritten.
    func writeListIndexes(_ db: Database, id: RecordID, record: JSONObject?, stored: JSONObject?, storedIsKnown: Bool) throws {
        guard !listTables.isEmpty else { return }
        let key = Self.keyValue(id)
        for (i, (attribute, _)) in listTables.enumerated() {
            let values = Self.listValues(record?[attribute.name])
            var hadRows = true
            if storedIsKnown {
                let before = Self.listValues(stored?[attribute.name])
                if before == values { continue }
                hadRows = !before.isEmpty
            }
            if hadRows {
                try db.cachedStatement(sql: listSQL[i].delete).execute(arguments: [key])
            }
            guard !values.isEmpty else { continue }
            let insert = try db.cachedStatement(sql: listSQL[i].insert)
            for v in values { try insert.execute(arguments: [v, key]) }
        }
    }

    /// The distinct index values of a list attribute's elements, in first-seen order.
    static func listValues(_ value: JSONValue?) -> [DatabaseValue] {
        guard case .array(let elements) = value, !elements.isEmpty else { return [] }
        var out: [DatabaseValue] = []
        out.reserveCapacity(elements.count)
        for e in elements {
            let v = indexValue(e)
            // Lists are short: a linear scan beats hashing here.
            guard !v.isNull, !out.contains(v) else { continue }
            out.append(v)
        }
        return out
    }
}
