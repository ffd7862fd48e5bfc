public import MicrolithJSON

/// A parsed REST query: `GET /Table/?<conditions>&select(...)&sort(...)&limit(...)`.
public struct Query: Sendable, Equatable {
    /// The filter; `nil` matches every record.
    public var filter: Condition?
    /// `select(...)`: the attributes to return; `nil` returns whole records.
    public var select: [SelectItem]?
    /// `sort(...)`: keys in order of precedence; ties break on the primary key.
    public var sort: [SortKey]
    /// `limit(n)` or `limit(start,end)`.
    public var limit: Limit?

    public init(filter: Condition? = nil, select: [SelectItem]? = nil, sort: [SortKey] = [], limit: Limit? = nil) {
        self.filter = filter
        self.select = select
        self.sort = sort
        self.limit = limit
    }
}

/// A boolean combination of comparisons.
public indirect enum Condition: Sendable, Equatable {
    case and([Condition])
    case or([Condition])
    case compare(Comparison)
}

/// `path op value`, such as `price=gt=10` or `brand.name==Acme`.
public struct Comparison: Sendable, Equatable {
    /// The attribute, with relationship hops for dotted paths (`["brand", "name"]`).
    public var path: [String]
    public var op: ComparisonOperator
    public var value: QueryValue
    /// Offset of the comparison in the query string, for error messages.
    public var offset: Int

    public init(path: [String], op: ComparisonOperator, value: QueryValue, offset: Int = 0) {
        self.path = path
        self.op = op
        self.value = value
        self.offset = offset
    }
}

/// The comparison operators of the URL language.
public enum ComparisonOperator: String, Sendable, Equatable, CaseIterable {
    /// `=` or `==` (or `=eq=`).
    case eq
    /// `!=` or `=ne=`: the negation of `eq`.
    case ne
    case gt, ge, lt, le
    /// `=sw=`: string starts with.
    case sw
    /// `=ct=`: string contains.
    case ct
}

/// A value as written in the query string.
public enum QueryValue: Sendable, Equatable {
    /// Text without a type prefix: converted to the attribute's declared type when bound
    /// (a `Float` attribute reads `5` as a number), kept as a string otherwise.
    case untyped(String)
    /// A value whose type the query fixed: `number:5`, `string:5`, `boolean:true`, `date:...`, or `null`.
    case typed(JSONValue)
}

/// One entry of `select(...)`; `children` is set for a relationship join such as `brand{name}`.
public struct SelectItem: Sendable, Equatable {
    public var name: String
    public var children: [SelectItem]?

    public init(name: String, children: [SelectItem]? = nil) {
        self.name = name
        self.children = children
    }
}

/// One key of `sort(...)`: `+price` or `price` ascending, `-price` descending.
public struct SortKey: Sendable, Equatable {
    public var path: [String]
    public var descending: Bool

    public init(path: [String], descending: Bool = false) {
        self.path = path
        self.descending = descending
    }
}

/// `limit(n)` is `Limit(start: 0, end: n)`; `limit(start,end)` skips `start` and stops before `end`.
public struct Limit: Sendable, Equatable {
    public var start: Int
    public var end: Int

    public init(start: Int, end: Int) {
        self.start = start
        self.end = end
    }

    public var count: Int { max(0, end - start) }
}
