public import MicrolithJSON

/// A query written once with placeholders (`categoryId=?&position=gt=?&sort(+position)&limit(4)`)
/// and run with different values: parsed once, and the values never need escaping.
///
/// Made by ``QueryParser/parseTemplate(_:)``. The placeholders are numbered in the order they are
/// written, and ``filled(with:)`` puts one argument in each.
public struct QueryTemplate: Sendable, Equatable {
    /// The parsed query; each placeholder's comparison holds `?` until it is filled.
    public var query: Query
    /// The offsets of the comparisons whose value is a placeholder, in the order they are written.
    public var placeholders: [Int]

    public init(query: Query, placeholders: [Int]) {
        self.query = query
        self.placeholders = placeholders
    }

    /// The query with the n-th placeholder's value replaced by `arguments[n]`.
    /// - Throws: ``QueryError`` when the number of arguments is not the number of placeholders.
    public func filled(with arguments: [QueryValue]) throws(QueryError) -> Query {
        guard arguments.count == placeholders.count else {
            throw QueryError(
                message: "the query has \(placeholders.count) placeholder\(placeholders.count == 1 ? "" : "s") ('?') "
                    + "but \(arguments.count) argument\(arguments.count == 1 ? " was" : "s were") given")
        }
        guard !placeholders.isEmpty, let filter = query.filter else { return query }
        // A template holds a few placeholders: a search of their offsets costs less than a table.
        func fill(_ condition: Condition) -> Condition {
            switch condition {
            case .and(let terms): return .and(terms.map(fill))
            case .or(let terms): return .or(terms.map(fill))
            case .compare(var comparison):
                if let n = placeholders.firstIndex(of: comparison.offset) { comparison.value = arguments[n] }
                return .compare(comparison)
            }
        }
        var result = query
        result.filter = fill(filter)
        return result
    }
}

/// A Swift value given for a placeholder of a ``QueryTemplate``.
///
/// Text is read as the same text written in the query would be (converted to the attribute's
/// declared type when the query is bound: `"12"` compared with an `Int` attribute is the number
/// 12); numbers, booleans and ``JSONValue``s keep their type; `nil` is `null`.
public protocol QueryArgument: Sendable {
    /// The value as the query holds it.
    var queryValue: QueryValue { get }
}

extension String: QueryArgument {
    public var queryValue: QueryValue { .untyped(self) }
}

extension Substring: QueryArgument {
    public var queryValue: QueryValue { .untyped(String(self)) }
}

extension Int: QueryArgument {
    public var queryValue: QueryValue { .typed(.int(Int64(self))) }
}

extension Int64: QueryArgument {
    public var queryValue: QueryValue { .typed(.int(self)) }
}

extension Int32: QueryArgument {
    public var queryValue: QueryValue { .typed(.int(Int64(self))) }
}

extension Double: QueryArgument {
    public var queryValue: QueryValue { .typed(.double(self)) }
}

extension Bool: QueryArgument {
    public var queryValue: QueryValue { .typed(.bool(self)) }
}

extension JSONValue: QueryArgument {
    public var queryValue: QueryValue { .typed(self) }
}

extension Optional: QueryArgument where Wrapped: QueryArgument {
    public var queryValue: QueryValue { self?.queryValue ?? .typed(.null) }
}
