package import GRDB
package import MicrolithJSON
public import MicrolithSchema

/// How a table is laid out in SQLite.
///
/// Per table: `r_<Table>(id PRIMARY KEY, data, version, origin, i_<attr>…)` holding the
/// record's JSON text, its version (hybrid logical clock) and origin node, plus one column and
/// index per scalar `@indexed` attribute; one side table `a_<Table>_<attr>(value, id)` per
/// indexed list attribute, with a row for each element.
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

    /// Writes the index rows (scalar columns are written with the record; this fills side tables).
    func writeListIndexes(_ db: Database, id: RecordID, record: JSONObject?) throws {
        let key = Self.keyValue(id)
        for (attribute, table) in listTables {
            try db.execute(sql: "DELETE FROM \"\(table)\" WHERE id = ?", arguments: [key])
            guard case .array(let elements) = record?[attribute.name] else { continue }
            var seen = Set<DatabaseValue>()
            for e in elements {
                let v = Self.indexValue(e)
                guard !v.isNull, seen.insert(v).inserted else { continue }
                try db.execute(sql: "INSERT INTO \"\(table)\"(value, id) VALUES (?, ?)", arguments: [v, key])
            }
        }
    }
}
