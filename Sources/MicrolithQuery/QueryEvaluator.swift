public import MicrolithJSON

/// Evaluates parsed (and normally bound) queries against records in memory: filtering, sorting and projection.
///
/// ## Matching
/// - A missing attribute is `null`.
/// - `eq`: the values are equal JSON values; integers and doubles compare numerically (`5` equals `5.0`),
///   strings compare byte for byte (no Unicode normalisation), objects ignore member order. `attr=null`
///   matches `null` and missing attributes; an empty array is not `null`.
/// - `ne` is exactly `NOT eq`, also for arrays: `tags!=x` matches when no element equals `x`.
/// - `gt`, `ge`, `lt`, `le` compare only two numbers, two strings (by UTF-8 bytes, so `"z" < "é"`), or two
///   booleans (`false < true`); any other pairing, `null` included, does not match.
/// - `sw`, `ct`: the record value and the query value must both be strings; byte-wise prefix / substring.
/// - When the record value is an array, `eq`, `gt`, `ge`, `lt`, `le`, `sw` and `ct` match when the whole
///   array equals the query value (for `eq`) or when ANY element matches.
/// - ``QueryValue/untyped(_:)`` values (not bound to a schema) are taken as strings.
public enum QueryEvaluator {
    /// `true` when `record` satisfies `condition`; `resolve` returns the value at an attribute path
    /// (the caller resolves relationships; ``defaultResolve(_:_:)`` walks nested objects only).
    /// An empty `and` matches every record, an empty `or` none.
    public static func matches(
        _ condition: Condition, record: JSONObject, resolve: (JSONObject, [String]) -> JSONValue
    ) -> Bool {
        switch condition {
        case .and(let terms):
            return terms.allSatisfy { matches($0, record: record, resolve: resolve) }
        case .or(let terms):
            return terms.contains { matches($0, record: record, resolve: resolve) }
        case .compare(let comparison):
            return matches(comparison, value: resolve(record, comparison.path))
        }
    }

    /// `true` when `value`, the record's value at the comparison's path, satisfies `comparison`.
    public static func matches(_ comparison: Comparison, value: JSONValue) -> Bool {
        let target: JSONValue
        switch comparison.value {
        case .typed(let typed): target = typed
        case .untyped(let text): target = .string(text)
        }
        if comparison.op == .ne { return !test(.eq, value, target) }
        return test(comparison.op, value, target)
    }

    private static func test(_ op: ComparisonOperator, _ value: JSONValue, _ target: JSONValue) -> Bool {
        if case .array(let elements) = value {
            if op == .eq && equal(value, target) { return true }
            return elements.contains { test(op, $0, target) }
        }
        switch op {
        case .eq, .ne:
            return equal(value, target)
        case .gt, .ge, .lt, .le:
            guard let order = orderedComparison(value, target) else { return false }
            switch op {
            case .gt: return order > 0
            case .ge: return order >= 0
            case .lt: return order < 0
            default: return order <= 0
            }
        case .sw, .ct:
            guard case .string(let text) = value, case .string(let part) = target else { return false }
            return op == .sw ? text.utf8.starts(with: part.utf8) : containsBytes(Array(text.utf8), Array(part.utf8))
        }
    }

    /// The value at `path` in `record`: walks nested objects; `.null` when a member is missing or a
    /// scalar is met before the path ends. When it meets an array before the path ends, it resolves the
    /// rest of the path on every element and returns the results as one array, an element whose result is
    /// an array contributing that array's elements (so `items.tags` over `[{tags:[a,b]},{tags:[c]}]` is
    /// `[a,b,c]`, and `items.sku` over `[{sku:1},{}]` is `[1,null]`). The empty path is the record itself.
    public static func defaultResolve(_ record: JSONObject, _ path: [String]) -> JSONValue {
        walk(.object(record), path[...])
    }

    private static func walk(_ value: JSONValue, _ path: ArraySlice<String>) -> JSONValue {
        guard let first = path.first else { return value }
        switch value {
        case .object(let object):
            return walk(object[first] ?? .null, path.dropFirst())
        case .array(let elements):
            var flattened: [JSONValue] = []
            for element in elements {
                let result = walk(element, path)
                if case .array(let inner) = result {
                    flattened.append(contentsOf: inner)
                } else {
                    flattened.append(result)
                }
            }
            return .array(flattened)
        default:
            return .null
        }
    }

    // MARK: Equality and order

    /// Deep equality: numbers numerically, strings by bytes, objects whatever their member order.
    static func equal(_ a: JSONValue, _ b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.int, .int), (.int, .double), (.double, .int), (.double, .double): return compareNumbers(a, b) == 0
        case (.string(let x), .string(let y)): return x.utf8.elementsEqual(y.utf8)
        case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy { equal($0, $1) }
        case (.object(let x), .object(let y)):
            guard x.count == y.count else { return false }
            return x.members.allSatisfy { key, value in y[key].map { equal(value, $0) } ?? false }
        default: return false
        }
    }

    /// The order of two values of the same orderable kind (numbers, strings, booleans); `nil` otherwise
    /// or when a number is NaN.
    static func orderedComparison(_ a: JSONValue, _ b: JSONValue) -> Int? {
        switch (a, b) {
        case (.int, .int), (.int, .double), (.double, .int), (.double, .double):
            if a.doubleValue?.isNaN == true || b.doubleValue?.isNaN == true { return nil }
            return compareNumbers(a, b)
        case (.string(let x), .string(let y)): return compareBytes(x, y)
        case (.bool(let x), .bool(let y)): return x == y ? 0 : (x ? 1 : -1)
        default: return nil
        }
    }

    /// A total order on JSON values (negative, zero or positive): `null` < booleans (`false` < `true`) <
    /// numbers (numerically; integers and doubles mixed exactly; NaN first) < strings (by UTF-8 bytes) <
    /// arrays (element by element, a prefix first) < objects (by their compact JSON text).
    public static func compare(_ a: JSONValue, _ b: JSONValue) -> Int {
        let (rankA, rankB) = (rank(a), rank(b))
        if rankA != rankB { return rankA < rankB ? -1 : 1 }
        switch (a, b) {
        case (.bool(let x), .bool(let y)): return x == y ? 0 : (x ? 1 : -1)
        case (.string(let x), .string(let y)): return compareBytes(x, y)
        case (.array(let x), .array(let y)):
            for (u, v) in zip(x, y) {
                let c = compare(u, v)
                if c != 0 { return c }
            }
            return x.count == y.count ? 0 : (x.count < y.count ? -1 : 1)
        case (.object, .object):
            return compareByteSequences(JSONWriter.encode(a), JSONWriter.encode(b))
        case (.null, .null): return 0
        default: return compareNumbers(a, b)
        }
    }

    private static func rank(_ value: JSONValue) -> Int {
        switch value {
        case .null: return 0
        case .bool: return 1
        case .int, .double: return 2
        case .string: return 3
        case .array: return 4
        case .object: return 5
        }
    }

    /// Compares two numbers exactly, even an `Int64` beyond 2^53 against a double; NaN sorts first.
    static func compareNumbers(_ a: JSONValue, _ b: JSONValue) -> Int {
        switch (a, b) {
        case (.int(let x), .int(let y)): return x == y ? 0 : (x < y ? -1 : 1)
        case (.int(let x), .double(let y)): return compareIntDouble(x, y)
        case (.double(let x), .int(let y)): return -compareIntDouble(y, x)
        case (.double(let x), .double(let y)):
            if x.isNaN || y.isNaN { return x.isNaN ? (y.isNaN ? 0 : -1) : 1 }
            return x == y ? 0 : (x < y ? -1 : 1)
        default: return 0
        }
    }

    private static func compareIntDouble(_ i: Int64, _ d: Double) -> Int {
        if d.isNaN { return 1 }
        // 2^63 is exactly representable; every double in [-2^63, 2^63) truncates to a valid Int64.
        if d >= 9_223_372_036_854_775_808.0 { return -1 }
        if d < -9_223_372_036_854_775_808.0 { return 1 }
        let whole = d.rounded(.towardZero)
        let truncated = Int64(whole)
        if i != truncated { return i < truncated ? -1 : 1 }
        let fraction = d - whole
        return fraction == 0 ? 0 : (fraction > 0 ? -1 : 1)
    }

    /// Compares the UTF-8 bytes of two strings.
    static func compareBytes(_ a: String, _ b: String) -> Int {
        compareByteSequences(a.utf8, b.utf8)
    }

    private static func compareByteSequences(_ a: some Sequence<UInt8>, _ b: some Sequence<UInt8>) -> Int {
        var x = a.makeIterator()
        var y = b.makeIterator()
        while true {
            switch (x.next(), y.next()) {
            case (nil, nil): return 0
            case (nil, _): return -1
            case (_, nil): return 1
            case (let u?, let v?): if u != v { return u < v ? -1 : 1 }
            }
        }
    }

    private static func containsBytes(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        if needle.isEmpty { return true }
        guard haystack.count >= needle.count else { return false }
        for start in 0...(haystack.count - needle.count) where haystack[start..<start + needle.count].elementsEqual(needle) {
            return true
        }
        return false
    }

    // MARK: Sorting and projection

    /// Sorts `records` by `keys` (each ascending or descending by ``compare(_:_:)`` of the values `resolve`
    /// returns), then by the value of the `primaryKey` member (ascending; missing is `null`), then by the
    /// records' original order, so the result is fully deterministic.
    public static func sort(
        _ records: inout [JSONObject], by keys: [SortKey], primaryKey: String, resolve: (JSONObject, [String]) -> JSONValue
    ) {
        let entries = records.enumerated().map { index, record in
            (index: index, values: keys.map { resolve(record, $0.path) }, key: record[primaryKey] ?? .null)
        }
        let sorted = entries.sorted { lhs, rhs in
            for (i, key) in keys.enumerated() {
                let c = compare(lhs.values[i], rhs.values[i])
                if c != 0 { return key.descending ? c > 0 : c < 0 }
            }
            let c = compare(lhs.key, rhs.key)
            if c != 0 { return c < 0 }
            return lhs.index < rhs.index
        }
        records = sorted.map { records[$0.index] }
    }

    /// The members of `record` that `select` names, in `select` order.
    ///
    /// A plain item copies the member when present (a missing member is left out). An item with children
    /// is a relationship: `related(record, name)` returns the related record, an array of them, or `null`;
    /// each related object is projected on the children recursively (array elements that are not objects,
    /// and any non-object result, are kept as they are), and the item is always present in the result.
    public static func project(
        _ record: JSONObject, select: [SelectItem], related: (JSONObject, String) -> JSONValue
    ) -> JSONObject {
        var result = JSONObject()
        for item in select {
            guard let children = item.children else {
                if let value = record[item.name] { result[item.name] = value }
                continue
            }
            result[item.name] = projectRelated(related(record, item.name), children, related)
        }
        return result
    }

    private static func projectRelated(
        _ value: JSONValue, _ children: [SelectItem], _ related: (JSONObject, String) -> JSONValue
    ) -> JSONValue {
        switch value {
        case .object(let object):
            return .object(project(object, select: children, related: related))
        case .array(let elements):
            return .array(elements.map { projectRelated($0, children, related) })
        default:
            return value
        }
    }
}
