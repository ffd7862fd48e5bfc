/// Where something was written in a schema file.
public struct SourceLocation: Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(file):\(line):\(column)" }
}

/// The type of an attribute as declared in `schema.graphql`.
public indirect enum AttributeType: Sendable, Equatable, CustomStringConvertible {
    /// `ID`: a string or an integer; as a primary key, always a string.
    case id
    case string
    /// `Int`: a 32-bit signed integer.
    case int
    /// `Long`: a 64-bit signed integer.
    case long
    /// `Float`: any JSON number.
    case float
    case boolean
    /// `Date`: stored as an ISO 8601 UTC string with milliseconds; a number is taken as
    /// milliseconds since 1970 and converted.
    case date
    /// `Any`: any JSON value.
    case any
    /// A nested object type (declared without `@table`) or, for relationships, a table type.
    case object(String)
    /// `[T]`.
    case list(AttributeType)

    public var description: String {
        switch self {
        case .id: return "ID"
        case .string: return "String"
        case .int: return "Int"
        case .long: return "Long"
        case .float: return "Float"
        case .boolean: return "Boolean"
        case .date: return "Date"
        case .any: return "Any"
        case .object(let name): return name
        case .list(let element): return "[\(element)]"
        }
    }

    /// The element type of a list, or the type itself.
    public var elementType: AttributeType {
        if case .list(let e) = self { return e.elementType }
        return self
    }

    /// `true` for `[T]`.
    public var isList: Bool {
        if case .list = self { return true }
        return false
    }

    /// `true` for the scalar types whose values order consistently (everything but `Any`, objects and lists).
    public var isOrderedScalar: Bool {
        switch self {
        case .id, .string, .int, .long, .float, .boolean, .date: return true
        case .any, .object, .list: return false
        }
    }
}

/// How a relationship attribute finds its related records.
public enum Relationship: Sendable, Equatable {
    /// `@relationship(from: attr)`: this record's `attr` holds the related record's primary key
    /// (or an array of them).
    case from(String)
    /// `@relationship(to: attr)`: the related table's `attr` holds this record's primary key.
    case to(String)
}

/// One attribute of a table or nested type.
public struct AttributeDefinition: Sendable, Equatable {
    public var name: String
    public var type: AttributeType
    /// Declared with `!`: a write must supply a non-null value.
    public var isRequired: Bool
    public var isPrimaryKey: Bool
    public var isIndexed: Bool
    /// `@indexed(sparse: true)`: the attribute's index holds only the records that give it a
    /// value (not null, not missing). A new record without one writes no index entry; a condition
    /// `attribute=null` cannot use the index, and a sort on the attribute can walk it only when the
    /// filter also compares the attribute with a value.
    public var isSparseIndex: Bool
    /// `@createdTime`: set by the store when the record is created.
    public var isCreatedTime: Bool
    /// `@updatedTime`: set by the store on every write.
    public var isUpdatedTime: Bool
    /// Set for `@relationship(...)`; such attributes are computed, never stored.
    public var relationship: Relationship?
    public var location: SourceLocation

    public init(
        name: String,
        type: AttributeType,
        isRequired: Bool = false,
        isPrimaryKey: Bool = false,
        isIndexed: Bool = false,
        isSparseIndex: Bool = false,
        isCreatedTime: Bool = false,
        isUpdatedTime: Bool = false,
        relationship: Relationship? = nil,
        location: SourceLocation
    ) {
        self.name = name
        self.type = type
        self.isRequired = isRequired
        self.isPrimaryKey = isPrimaryKey
        self.isIndexed = isIndexed
        self.isSparseIndex = isSparseIndex
        self.isCreatedTime = isCreatedTime
        self.isUpdatedTime = isUpdatedTime
        self.relationship = relationship
        self.location = location
    }
}

/// A type declared with `@table`.
public struct TableDefinition: Sendable, Equatable {
    /// The GraphQL type name.
    public var typeName: String
    /// The table's name: `@table(table:)`, else the type name.
    public var name: String
    /// The database holding the table: `@table(database:)`, else ``Schema/defaultDatabase``.
    public var database: String
    /// The REST path segment when exported: `@export(name:)`, else the type name; `nil` when not exported.
    public var exportName: String?
    /// `@table(expiration:)` in seconds.
    public var expiration: Int?
    /// `@sealed`: attributes not declared are refused.
    public var isSealed: Bool
    /// The attribute marked `@primaryKey` (or named `id` when none is marked).
    public var primaryKey: String
    /// All attributes, in declaration order.
    public var attributes: [AttributeDefinition]
    /// Composite indexes, `@index(attributes: [...])` on the type: each lists two or more
    /// `@indexed` scalar attributes, in the order the index sorts by.
    public var compositeIndexes: [CompositeIndexDefinition]
    public var location: SourceLocation

    public init(
        typeName: String,
        name: String,
        database: String,
        exportName: String?,
        expiration: Int?,
        isSealed: Bool,
        primaryKey: String,
        attributes: [AttributeDefinition],
        compositeIndexes: [CompositeIndexDefinition] = [],
        location: SourceLocation
    ) {
        self.typeName = typeName
        self.name = name
        self.database = database
        self.exportName = exportName
        self.expiration = expiration
        self.isSealed = isSealed
        self.primaryKey = primaryKey
        self.attributes = attributes
        self.compositeIndexes = compositeIndexes
        self.location = location
    }

    /// The attribute named `name`.
    public func attribute(_ name: String) -> AttributeDefinition? {
        attributes.first { $0.name == name }
    }

    /// The primary key attribute.
    public var primaryKeyAttribute: AttributeDefinition {
        attribute(primaryKey)!
    }

    /// Attributes with `@indexed` (never relationships).
    public var indexedAttributes: [AttributeDefinition] {
        attributes.filter { $0.isIndexed && !$0.isPrimaryKey && $0.relationship == nil }
    }
}

/// One `@index(attributes: [...])` of a table: an index over several `@indexed` scalar
/// attributes, sorting by the first, then the second, and so on (then the primary key).
///
/// A query that tests the leading attributes for equality and sorts by the next one with a
/// `limit` (`categoryId=c8&position=gt=40&sort(+position)&limit(4)` with
/// `@index(attributes: ["categoryId", "position"])`) reads its rows straight from the index in
/// order, however many records share the equal values.
public struct CompositeIndexDefinition: Sendable, Equatable {
    /// The attribute names, in index order.
    public var attributes: [String]
    public var location: SourceLocation

    public init(attributes: [String], location: SourceLocation) {
        self.attributes = attributes
        self.location = location
    }
}

/// A type declared without `@table`: the shape of a nested object.
public struct NestedTypeDefinition: Sendable, Equatable {
    public var name: String
    public var isSealed: Bool
    public var attributes: [AttributeDefinition]
    public var location: SourceLocation

    public init(name: String, isSealed: Bool, attributes: [AttributeDefinition], location: SourceLocation) {
        self.name = name
        self.isSealed = isSealed
        self.attributes = attributes
        self.location = location
    }
}

/// A parsed and validated `schema.graphql`.
public struct Schema: Sendable, Equatable {
    /// The database a table is in unless `@table(database:)` names another: `"data"` (its file
    /// is `data.sqlite`).
    public static let defaultDatabase = "data"

    /// Every table, in declaration order.
    public var tables: [TableDefinition]
    /// Every nested (non-table) type by name.
    public var nestedTypes: [String: NestedTypeDefinition]

    public init(tables: [TableDefinition], nestedTypes: [String: NestedTypeDefinition]) {
        self.tables = tables
        self.nestedTypes = nestedTypes
    }

    /// The database names, in order of first appearance.
    public var databases: [String] {
        var seen: [String] = []
        for t in tables where !seen.contains(t.database) { seen.append(t.database) }
        return seen
    }

    /// The tables of `database`.
    public func tables(in database: String) -> [TableDefinition] {
        tables.filter { $0.database == database }
    }

    /// The table declared by the GraphQL type `typeName`.
    public func table(typeName: String) -> TableDefinition? {
        tables.first { $0.typeName == typeName }
    }

    /// The exported table whose REST path segment is `exportName`.
    public func exportedTable(_ exportName: String) -> TableDefinition? {
        tables.first { $0.exportName == exportName }
    }
}
