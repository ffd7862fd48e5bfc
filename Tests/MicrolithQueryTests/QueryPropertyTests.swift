import Foundation
import MicrolithJSON
import MicrolithQuery
import MicrolithSchema
import MicrolithStore
import PropertyBased
import Synchronization
import Testing

// Random records and random URL queries are run through the server's real path
// (QueryParser.parse → Query.bound → QueryExecutor.execute on a SQLite store) and compared with
// a brute-force model of the query language written here from its documentation, independently
// of QueryEvaluator.

/// A count shared with the property's closure.
private final class Counter: Sendable {
    let value = Atomic(0)
}

// MARK: - The table

private enum Kind: Sendable {
    case int, float, string, boolean, strings
}

private struct Attribute: Sendable {
    var name: String
    var kind: Kind
}

/// Every attribute kind twice: indexed (pushed into SQL) and not (checked in memory).
private let attributes: [Attribute] = [
    Attribute(name: "n", kind: .int), Attribute(name: "m", kind: .int),
    Attribute(name: "f", kind: .float), Attribute(name: "g", kind: .float),
    Attribute(name: "s", kind: .string), Attribute(name: "t", kind: .string),
    Attribute(name: "b", kind: .boolean), Attribute(name: "c", kind: .boolean),
    Attribute(name: "tags", kind: .strings), Attribute(name: "labels", kind: .strings),
]

/// The primary key, usable in conditions and sorts like any integer attribute.
private let primaryKey = Attribute(name: "id", kind: .int)

private let schemaText = """
    type Item @table @export {
        id: Int @primaryKey
        n: Int @indexed
        m: Int
        f: Float @indexed
        g: Float
        s: String @indexed
        t: String
        b: Boolean @indexed
        c: Boolean
        tags: [String] @indexed
        labels: [String]
    }
    """

// MARK: - Random data

private let stringPool = ["", "a", "ab", "abc", "b", "ba", "B", "z", "é", "éa", "a b", "10", "9", "x%y"]
private let floatPool: [JSONValue] = [.double(-1.5), .int(-1), .int(0), .double(0.5), .int(1), .double(1.0), .int(2), .double(2.25)]
private let floatTexts = ["-1.5", "-1", "0", "0.5", "1", "1.0", "2", "2.25", "3", "1e0"]

private func pick<T, R: RandomNumberGenerator>(_ values: [T], _ rng: inout R) -> T {
    values[Int.random(in: 0..<values.count, using: &rng)]
}

private func chance<R: RandomNumberGenerator>(_ percent: Int, _ rng: inout R) -> Bool {
    Int.random(in: 0..<100, using: &rng) < percent
}

private func randomValue<R: RandomNumberGenerator>(_ kind: Kind, _ rng: inout R) -> JSONValue {
    switch kind {
    case .int: return .int(Int64.random(in: -3...3, using: &rng))
    case .float: return pick(floatPool, &rng)
    case .string: return .string(pick(stringPool, &rng))
    case .boolean: return .bool(Bool.random(using: &rng))
    case .strings:
        let count = Int.random(in: 0...3, using: &rng)
        return .array((0..<count).map { _ in chance(10, &rng) ? .null : .string(pick(stringPool, &rng)) })
    }
}

/// A record as written: its key and its members (a member may be absent, `null` or a value).
private struct Record: Sendable, CustomStringConvertible {
    var id: Int64
    var body: JSONObject

    /// The record as the store keeps it: the key first, then the body.
    var stored: JSONObject {
        var object = JSONObject()
        object["id"] = .int(id)
        for (k, v) in body.members { object[k] = v }
        return object
    }

    var description: String { JSONValue.object(stored).description }
}

private func randomRecords<R: RandomNumberGenerator>(_ rng: inout R) -> [Record] {
    let count = Int.random(in: 0...40, using: &rng)
    let ids = Array((1...100).shuffled(using: &rng).prefix(count))
    return ids.map { id in
        var body = JSONObject()
        for attribute in attributes.shuffled(using: &rng) {
            switch Int.random(in: 0..<10, using: &rng) {
            case 0, 1: continue
            case 2: body[attribute.name] = .null
            default: body[attribute.name] = randomValue(attribute.kind, &rng)
            }
        }
        return Record(id: Int64(id), body: body)
    }
}

// MARK: - Random queries

/// A value as written in a query.
private enum RawValue: Sendable {
    case null
    case typed(prefix: String, text: String)
    case text(String)

    var rendered: String {
        switch self {
        case .null: return "null"
        case .typed(let prefix, let text): return "\(prefix):\(encode(text))"
        case .text(let text): return encode(text)
        }
    }
}

private struct Term: Sendable {
    var attribute: Attribute
    var op: ComparisonOperator
    var value: RawValue
    /// How `eq` and `ne` are spelled: 0 `=`/`!=`, 1 `==`/`=ne=`, 2 `=eq=`/`=ne=`.
    var spelling: Int
}

private indirect enum Filter: Sendable {
    case compare(Term)
    /// `attr=op1=v1&op2=v2` (or `|`): a chained range on one attribute.
    case range(Term, Term, isOr: Bool)
    case and([Filter])
    case or([Filter], bracketAndChildren: Bool)

    var isOr: Bool {
        switch self {
        case .or: return true
        case .range(_, _, let isOr): return isOr
        default: return false
        }
    }
}

private struct Key: Sendable {
    var attribute: Attribute
    var descending: Bool
    /// `+` written explicitly for an ascending key.
    var plus: Bool
}

private struct RandomQuery: Sendable, CustomStringConvertible {
    var filter: Filter?
    var sort: [Key]
    var select: [String]?
    var limit: (start: Int, end: Int, pair: Bool)?
    /// Where the functions go: before or after the filter.
    var functionsFirst: Bool

    var text: String {
        var terms: [String] = []
        if !sort.isEmpty {
            terms.append("sort(" + sort.map { ($0.descending ? "-" : ($0.plus ? "+" : "")) + $0.attribute.name }.joined(separator: ",") + ")")
        }
        if let select { terms.append("select(\(select.joined(separator: ",")))") }
        if let limit { terms.append(limit.pair ? "limit(\(limit.start),\(limit.end))" : "limit(\(limit.end))") }
        guard let filter else { return terms.joined(separator: "&") }
        var rendered = render(filter)
        if !terms.isEmpty && filter.isOr { rendered = "[\(rendered)]" }
        return (functionsFirst ? terms + [rendered] : [rendered] + terms).joined(separator: "&")
    }

    var description: String { text }
}

/// Percent-encodes everything but unreserved characters.
private func encode(_ text: String) -> String {
    var out = ""
    for byte in text.utf8 {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
            out.append(Character(Unicode.Scalar(byte)))
        default:
            out += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
        }
    }
    return out
}

private func renderOperator(_ c: Term) -> String {
    switch (c.op, c.spelling) {
    case (.eq, 0): return "="
    case (.eq, 1): return "=="
    case (.ne, 0): return "!="
    default: return "=\(c.op.rawValue)="
    }
}

private func render(_ filter: Filter) -> String {
    switch filter {
    case .compare(let c):
        return c.attribute.name + renderOperator(c) + c.value.rendered
    case .range(let low, let high, let isOr):
        return low.attribute.name + renderOperator(low) + low.value.rendered + (isOr ? "|" : "&") + high.op.rawValue + "="
            + high.value.rendered
    case .and(let children):
        return children.map { $0.isOr ? "[\(render($0))]" : render($0) }.joined(separator: "&")
    case .or(let children, let bracket):
        return children.map { child in
            if case .and = child, bracket { return "[\(render(child))]" }
            return render(child)
        }.joined(separator: "|")
    }
}

private func randomText<R: RandomNumberGenerator>(_ kind: Kind, _ rng: inout R) -> String {
    switch kind {
    case .int: return String(Int.random(in: -4...4, using: &rng))
    case .float: return pick(floatTexts, &rng)
    case .string, .strings: return pick(stringPool + ["c", "é"], &rng)
    case .boolean: return Bool.random(using: &rng) ? "true" : "false"
    }
}

private func randomRawValue<R: RandomNumberGenerator>(_ kind: Kind, _ rng: inout R) -> RawValue {
    switch Int.random(in: 0..<20, using: &rng) {
    case 0, 1: return .null
    case 2: return .typed(prefix: "number", text: pick(["1", "0.5", "-1", "2"], &rng))
    case 3: return .typed(prefix: "string", text: pick(["1", "a", "", "true"], &rng))
    case 4: return .typed(prefix: "boolean", text: Bool.random(using: &rng) ? "true" : "false")
    default: return .text(randomText(kind, &rng))
    }
}

private func randomAttribute<R: RandomNumberGenerator>(_ rng: inout R) -> Attribute {
    chance(8, &rng) ? primaryKey : pick(attributes, &rng)
}

private func randomTerm<R: RandomNumberGenerator>(_ rng: inout R) -> Term {
    let attribute = randomAttribute(&rng)
    return Term(
        attribute: attribute, op: pick(ComparisonOperator.allCases, &rng), value: randomRawValue(attribute.kind, &rng),
        spelling: Int.random(in: 0...2, using: &rng))
}

private func randomFilter<R: RandomNumberGenerator>(depth: Int, _ rng: inout R) -> Filter {
    let roll = Int.random(in: 0..<10, using: &rng)
    if depth == 0 || roll < 4 { return .compare(randomTerm(&rng)) }
    if roll < 6 {
        let attribute = randomAttribute(&rng)
        let isOr = chance(30, &rng)
        let low = Term(
            attribute: attribute, op: isOr ? pick([.lt, .le], &rng) : pick([.gt, .ge], &rng),
            value: .text(randomText(attribute.kind, &rng)), spelling: 2)
        let high = Term(
            attribute: attribute, op: isOr ? pick([.gt, .ge], &rng) : pick([.lt, .le], &rng),
            value: chance(10, &rng) ? randomRawValue(attribute.kind, &rng) : .text(randomText(attribute.kind, &rng)), spelling: 2)
        return .range(low, high, isOr: isOr)
    }
    let children = (0..<Int.random(in: 2...3, using: &rng)).map { _ in randomFilter(depth: depth - 1, &rng) }
    return roll < 8 ? .and(children) : .or(children, bracketAndChildren: chance(50, &rng))
}

private func randomQuery<R: RandomNumberGenerator>(_ rng: inout R) -> RandomQuery {
    let filter = chance(85, &rng) ? randomFilter(depth: 3, &rng) : nil
    var sort: [Key] = []
    if chance(40, &rng) {
        var used: Set<String> = []
        for _ in 0..<Int.random(in: 1...2, using: &rng) {
            let attribute = randomAttribute(&rng)
            guard used.insert(attribute.name).inserted else { continue }
            sort.append(Key(attribute: attribute, descending: Bool.random(using: &rng), plus: Bool.random(using: &rng)))
        }
    }
    var select: [String]?
    if chance(30, &rng) {
        let names = ([primaryKey] + attributes).map(\.name).shuffled(using: &rng)
        select = Array(names.prefix(Int.random(in: 1...4, using: &rng)))
    }
    var limit: (Int, Int, Bool)?
    if chance(30, &rng) {
        let start = Int.random(in: 0...8, using: &rng)
        let pair = Bool.random(using: &rng)
        limit = pair ? (start, start + Int.random(in: 0...10, using: &rng), true) : (0, Int.random(in: 0...10, using: &rng), false)
    }
    return RandomQuery(filter: filter, sort: sort, select: select, limit: limit, functionsFirst: Bool.random(using: &rng))
}

private struct Scenario: Sendable, CustomStringConvertible {
    var records: [Record]
    var queries: [RandomQuery]

    var description: String {
        "\(records.count) records, \(queries.count) queries: " + queries.map(\.text).joined(separator: "  ")
    }
}

private let scenarios = Generator<Scenario, Shrink.None<Scenario>> { rng in
    let records = randomRecords(&rng)
    let queries = (0..<25).map { _ in randomQuery(&rng) }
    return Scenario(records: records, queries: queries)
}

// MARK: - The model: the query language's documented semantics, brute force

/// The value a comparison compares with, as `Query.bound(to:schema:)` documents it.
private func target(_ c: Term) -> JSONValue {
    switch c.value {
    case .null:
        return .null
    case .typed(let prefix, let text):
        switch prefix {
        case "number": return number(text)
        case "boolean": return .bool(text == "true")
        default: return .string(text)
        }
    case .text(let text):
        if c.op == .sw || c.op == .ct { return .string(text) }
        switch c.attribute.kind {
        case .int: return .int(Int64(text)!)
        case .float: return number(text)
        case .boolean: return .bool(text == "true")
        case .string, .strings: return .string(text)
        }
    }
}

private func number(_ text: String) -> JSONValue {
    if let i = Int64(text) { return .int(i) }
    return .double(Double(text)!)
}

private func numeric(_ v: JSONValue) -> Double? {
    switch v {
    case .int(let i): return Double(i)
    case .double(let d): return d
    default: return nil
    }
}

private func bytesOrder(_ a: String, _ b: String) -> Int {
    let x = Array(a.utf8)
    let y = Array(b.utf8)
    for (u, v) in zip(x, y) where u != v { return u < v ? -1 : 1 }
    return x.count == y.count ? 0 : (x.count < y.count ? -1 : 1)
}

/// Equality of a scalar (or null) record value with the query value.
private func same(_ v: JSONValue, _ t: JSONValue) -> Bool {
    switch (v, t) {
    case (.null, .null): return true
    case (.bool(let x), .bool(let y)): return x == y
    case (.string(let x), .string(let y)): return bytesOrder(x, y) == 0
    case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy { same($0, $1) }
    default:
        if let x = numeric(v), let y = numeric(t) { return x == y }
        return false
    }
}

/// The order of two values of one orderable kind (numbers, strings, booleans), else `nil`.
private func order(_ v: JSONValue, _ t: JSONValue) -> Int? {
    switch (v, t) {
    case (.string(let x), .string(let y)): return bytesOrder(x, y)
    case (.bool(let x), .bool(let y)): return x == y ? 0 : (x ? 1 : -1)
    default:
        guard let x = numeric(v), let y = numeric(t) else { return nil }
        return x == y ? 0 : (x < y ? -1 : 1)
    }
}

private func scalarMatches(_ op: ComparisonOperator, _ v: JSONValue, _ t: JSONValue) -> Bool {
    switch op {
    case .eq, .ne: return same(v, t)
    case .gt: return order(v, t).map { $0 > 0 } ?? false
    case .ge: return order(v, t).map { $0 >= 0 } ?? false
    case .lt: return order(v, t).map { $0 < 0 } ?? false
    case .le: return order(v, t).map { $0 <= 0 } ?? false
    case .sw, .ct:
        guard case .string(let text) = v, case .string(let part) = t else { return false }
        let haystack = Array(text.utf8)
        let needle = Array(part.utf8)
        if op == .sw { return haystack.starts(with: needle) }
        if needle.isEmpty { return true }
        guard haystack.count >= needle.count else { return false }
        return (0...(haystack.count - needle.count)).contains { Array(haystack[$0..<$0 + needle.count]) == needle }
    }
}

/// `ne` is `not eq`; an array matches when it equals the value (`eq`) or any element matches;
/// a missing attribute is `null`.
private func matches(_ c: Term, _ record: Record) -> Bool {
    let value = record.stored[c.attribute.name] ?? .null
    let t = target(c)
    func positive(_ op: ComparisonOperator) -> Bool {
        if case .array(let elements) = value {
            if op == .eq && same(value, t) { return true }
            return elements.contains { scalarMatches(op, $0, t) }
        }
        return scalarMatches(op, value, t)
    }
    return c.op == .ne ? !positive(.eq) : positive(c.op)
}

private func matches(_ filter: Filter, _ record: Record) -> Bool {
    switch filter {
    case .compare(let c): return matches(c, record)
    case .range(let low, let high, let isOr):
        return isOr ? (matches(low, record) || matches(high, record)) : (matches(low, record) && matches(high, record))
    case .and(let children): return children.allSatisfy { matches($0, record) }
    case .or(let children, _): return children.contains { matches($0, record) }
    }
}

/// The documented total order: null < booleans < numbers < strings (bytes) < arrays (element-wise, prefix first).
private func totalOrder(_ a: JSONValue, _ b: JSONValue) -> Int {
    func rank(_ v: JSONValue) -> Int {
        switch v {
        case .null: return 0
        case .bool: return 1
        case .int, .double: return 2
        case .string: return 3
        case .array: return 4
        case .object: return 5
        }
    }
    if rank(a) != rank(b) { return rank(a) < rank(b) ? -1 : 1 }
    switch (a, b) {
    case (.array(let x), .array(let y)):
        for (u, v) in zip(x, y) {
            let c = totalOrder(u, v)
            if c != 0 { return c }
        }
        return x.count == y.count ? 0 : (x.count < y.count ? -1 : 1)
    case (.null, .null): return 0
    default: return order(a, b) ?? 0
    }
}

/// What the query should answer: the matching records, sorted (ties by key), limited, projected.
private func expected(_ query: RandomQuery, _ records: [Record]) -> [(id: Int64, record: JSONObject)] {
    var rows = records.filter { record in query.filter.map { matches($0, record) } ?? true }
    rows.sort { x, y in
        for key in query.sort {
            let c = totalOrder(x.stored[key.attribute.name] ?? .null, y.stored[key.attribute.name] ?? .null)
            if c != 0 { return key.descending ? c > 0 : c < 0 }
        }
        return x.id < y.id
    }
    if let limit = query.limit {
        rows = Array(rows.dropFirst(limit.start).prefix(max(0, limit.end - limit.start)))
    }
    return rows.map { record in
        guard let select = query.select else { return (record.id, record.stored) }
        var projected = JSONObject()
        for name in select {
            if let value = record.stored[name] { projected[name] = value }
        }
        return (record.id, projected)
    }
}

// MARK: - The property

@Suite("Query language: real store vs. brute-force model")
struct QueryPropertyTests {
    /// A store in `directory` holding `records` in its `Item` table.
    private static func seededStore(_ directory: String, _ records: [Record]) async throws -> (Store, TableLayout) {
        let schema = try SchemaParser.parse(schemaText, file: "schema.graphql")
        let store = try Store.open(schema: schema, configuration: StoreConfiguration(directory: directory, durability: .normal))
        let table = try #require(store.table(exportName: "Item"))
        try await store.write { (txn: WriteTransaction) -> Void in
            for record in records { try txn.put(table, id: .int(record.id), body: record.body) }
        }
        return (store, table)
    }

    @Test func queriesAgreeWithTheModel() async {
        // How the queries were answered, to check the generator reaches every kind of plan.
        var plans: [String: Int] = [:]
        await propertyCheck(count: 60, input: scenarios) { scenario in
            let directory = (NSTemporaryDirectory() as NSString).appendingPathComponent("microlith-query-tests-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let (store, table) = try await Self.seededStore(directory, scenario.records)
            defer { store.close() }
            let records = scenario.records
            let executor = QueryExecutor(store: store)

            for query in scenario.queries {
                let text = query.text
                let parsed = try QueryParser.parse(text).bound(to: table.definition, schema: store.schema)
                let result = try await executor.execute(parsed, table: table)
                if result.plan.usesIndex { plans["index", default: 0] += 1 }
                if result.plan.isFullScan { plans["full scan", default: 0] += 1 }
                if !result.plan.isExact { plans["residual filter", default: 0] += 1 }
                if result.plan.sortsInSQL { plans["SQL sort", default: 0] += 1 }
                if parsed.filter != nil && result.plan.isExact { plans["exact filter", default: 0] += 1 }
                let want = expected(query, records)
                let got = result.rows.map { row -> Int64 in
                    if case .int(let i) = row.id { return i }
                    return -1
                }
                #expect(
                    got == want.map(\.id),
                    "query \(text) (plan \(result.plan)) over \(records.map(\.description).joined(separator: ", "))")
                if got == want.map(\.id) {
                    for (row, wanted) in zip(result.rows, want) where row.record != wanted.record {
                        Issue.record(
                            "query \(text): record \(row.id) is \(JSONValue.object(row.record)), expected \(JSONValue.object(wanted.record))")
                    }
                    if let select = query.select {
                        for row in result.rows {
                            #expect(row.record.keys == select.filter { row.record[$0] != nil }, "select keeps its order")
                        }
                    }
                }
            }
        }
        for kind in ["index", "full scan", "residual filter", "SQL sort", "exact filter"] {
            #expect(plans[kind, default: 0] > 0, "no query was answered with a plan using \(kind): \(plans)")
        }
    }

    /// What DELETE by query relies on (`TableEndpoint.deleteMatching` runs `QueryExecutor.run` on
    /// the write transaction's connection and deletes the rows it returns): that query, run inside
    /// a write transaction, returns exactly the records the model says match, and deleting them
    /// leaves exactly the others. The HTTP rules around it (`limit(n)`, the 400 when a query
    /// without one matches several) are `CollectionEndpointTests`'.
    @Test func deletingWhatAQueryMatchesInsideAWriteLeavesExactlyTheRest() async {
        let checked = Counter()
        await propertyCheck(count: 40, input: scenarios) { scenario in
            let directory = (NSTemporaryDirectory() as NSString).appendingPathComponent("microlith-query-tests-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let (store, table) = try await Self.seededStore(directory, scenario.records)
            defer { store.close() }
            let records = scenario.records
            // Scenarios hold 25 queries; one without any filter is counted below, not skipped silently.
            guard let filter = scenario.queries.lazy.compactMap(\.filter).first else { return }
            checked.value.add(1, ordering: .relaxed)
            let text = render(filter)
            let parsed = try QueryParser.parse(text).bound(to: table.definition, schema: store.schema)
            let executor = QueryExecutor(store: store)
            let plan = executor.plan(parsed, table: table)
            let deleted = try await store.write { txn in
                let rows = try executor.run(MicrolithQuery.Query(filter: parsed.filter), plan: plan, table: table, db: txn.db).rows
                for row in rows { try txn.delete(table, id: row.id) }
                return rows.map(\.id)
            }
            let matching = records.filter { matches(filter, $0) }.map { RecordID.int($0.id) }.sorted()
            #expect(deleted.sorted() == matching, "DELETE ?\(text) (plan \(plan))")
            let remaining = try await executor.execute(MicrolithQuery.Query(), table: table).rows.map(\.id)
            let expectedRemaining = records.filter { !matches(filter, $0) }.map { RecordID.int($0.id) }.sorted()
            #expect(remaining == expectedRemaining, "DELETE ?\(text) (plan \(plan))")
        }
        let scenariosChecked = checked.value.load(ordering: .relaxed)
        #expect(scenariosChecked >= 30, "only \(scenariosChecked) of 40 scenarios had a query with a filter")
    }

    @Test func generatedQueriesAlwaysParse() async {
        await propertyCheck(count: 200, input: scenarios) { scenario in
            for query in scenario.queries {
                #expect(throws: Never.self, "\(query.text)") { try QueryParser.parse(query.text) }
            }
        }
    }
}
