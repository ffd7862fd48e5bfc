import Foundation
import MicrolithJSON
import MicrolithQuery
import MicrolithSchema
import MicrolithStore
import MicrolithTestSupport
import Testing

private let fuzzSchema = """
    type Item @table @export {
        id: ID @primaryKey
        n: Int @indexed
        f: Float
        s: String @indexed
        b: Boolean @indexed
        d: Date @indexed
        tags: [String] @indexed
        ownerId: ID @indexed
        owner: Person @relationship(from: ownerId)
    }
    type Person @table @export {
        id: ID @primaryKey
        name: String @indexed
        items: [Item] @relationship(to: ownerId)
    }
    """

/// Seeded mutations of valid REST query strings, taken the whole way a `GET /Item/?…` takes
/// them: parsed, bound to the table, planned and run against a real store. Each step either
/// succeeds or refuses with an error that says what is wrong (`QuerySyntaxError` pointing inside
/// the text, `QueryError`); nothing crashes and no query reaches SQLite in a form it rejects.
///
/// The test command runs a few thousand inputs; `Benchmarks/fuzz/run` runs a million.
@Suite("REST queries: fuzzing")
struct QueryFuzzTests {
    static let seeds = [
        "n=gt=3&sort(-n)&limit(5)",
        "[s=alpha|s=beta]&b=true&select(id,s,owner{name})",
        "tags=red&d=ge=date:2024-01-01T00:00:00Z&sort(+d,-id)&limit(2,7)",
        "ownerId=p1&owner.name=sw=An&select(id,owner{name,items{id}})",
        "f=lt=number:2.5&s!=x%20y&sort(+f)",
        "(n=1|n=2)&(s=ct=a|s=sw=z)&limit(0)",
        "id=gt=i10&id=lt=i20&sort(-id)&limit(3)",
        "s=caf%C3%A9&b=boolean:false&n=ge=0",
        "owner.name=Ann&sort(+n,+s)&select(n)",
        "",
    ]

    /// Characters that matter to the grammar, and escapes that test the decoding.
    static let noise = [
        "[", "]", "(", ")", "{", "}", "&", "|", "=", "!", ",", ".", "+", "-", ":", "%", "%00", "%FF", "%2", "%C3",
        "=gt=", "=ne=", "=sw=", "date:", "number:", "boolean:", "sort(", "limit(", "select(", "owner.", "items{", "é", "\u{0}",
        "9999999999999999999999", "-1", "1e400",
    ]

    static func mutate(_ text: String, using random: inout SplitMix64) -> String {
        var chars = Array(text)
        for _ in 0..<Int.random(in: 1...3, using: &random) {
            switch Int.random(in: 0..<6, using: &random) {
            case 0:  // truncate
                chars = Array(chars.prefix(Int.random(in: 0...chars.count, using: &random)))
            case 1:  // replace a character with noise
                if !chars.isEmpty {
                    let at = Int.random(in: 0..<chars.count, using: &random)
                    chars.replaceSubrange(at...at, with: Array(noise.randomElement(using: &random)!))
                }
            case 2:  // insert noise
                chars.insert(contentsOf: Array(noise.randomElement(using: &random)!), at: Int.random(in: 0...chars.count, using: &random))
            case 3:  // delete a run
                if !chars.isEmpty {
                    let at = Int.random(in: 0..<chars.count, using: &random)
                    chars.removeSubrange(at..<min(chars.count, at + Int.random(in: 1...5, using: &random)))
                }
            case 4:  // join another query
                chars += Array(["&", "|", ""].randomElement(using: &random)! + seeds.randomElement(using: &random)!)
            default:  // repeat a run (nesting, long values)
                if !chars.isEmpty {
                    let at = Int.random(in: 0..<chars.count, using: &random)
                    let run = Array(chars[at..<min(chars.count, at + Int.random(in: 1...3, using: &random))])
                    chars.insert(contentsOf: Array(repeating: run, count: [2, 40, 200].randomElement(using: &random)!).flatMap { $0 }, at: at)
                }
            }
        }
        return String(chars)
    }

    enum Outcome { case refusedSyntax, refusedBinding, refusedRunning, answered }

    static func check(_ text: String, store: Store, table: TableLayout, executor: QueryExecutor, failures: inout [String]) async -> Outcome {
        let parsed: Query
        do {
            parsed = try QueryParser.parse(text)
        } catch {
            if !(0...text.count).contains(error.offset) {
                failures.append("\(error) points outside the \(text.count) characters of \(text.debugDescription)")
            }
            if error.message.isEmpty { failures.append("no message for \(text.debugDescription)") }
            return .refusedSyntax
        }
        let bound: Query
        do {
            bound = try parsed.bound(to: table.definition, schema: store.schema)
        } catch {
            if error.message.isEmpty { failures.append("no message binding \(text.debugDescription)") }
            if let offset = error.offset, !(0...text.count).contains(offset) { failures.append("\(error) points outside \(text.debugDescription)") }
            return .refusedBinding
        }
        do {
            _ = try await executor.execute(bound, table: table)
            return .answered
        } catch let error as QueryError {
            if error.message.isEmpty { failures.append("no message running \(text.debugDescription)") }
            return .refusedRunning
        } catch {
            failures.append("\(text.debugDescription) failed to run: \(error)")
            return .refusedRunning
        }
    }

    @Test(.timeLimit(.minutes(30)))
    func mutatedQueriesAreAnsweredOrRefusedWithAReason() async throws {
        let directory = (NSTemporaryDirectory() as NSString).appendingPathComponent("microlith-query-fuzz-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try Store.open(
            schema: try SchemaParser.parse(fuzzSchema, file: "schema.graphql"),
            configuration: StoreConfiguration(directory: directory, durability: .normal))
        defer { store.close() }
        let items = try #require(store.table(exportName: "Item"))
        let people = try #require(store.table(exportName: "Person"))
        try await store.write { txn in
            for (i, name) in ["Ann", "Bob", "Anton", "Zoë", "Ed"].enumerated() {
                _ = try txn.put(people, id: .string("p\(i)"), body: ["name": .string(name)])
            }
            for i in 0..<60 {
                _ = try txn.put(
                    items, id: .string("i\(i)"),
                    body: [
                        "n": .int(Int64(i % 13)), "f": .double(Double(i) / 4), "s": .string(["alpha", "beta", "café", "x y"][i % 4]),
                        "b": .bool(i % 3 == 0), "d": .string("2024-0\(1 + i % 9)-1\(i % 10)T00:00:00.000Z"),
                        "tags": .array([.string(["red", "green"][i % 2]), .string("t\(i % 5)")]), "ownerId": .string("p\(i % 6)"),
                    ])
            }
        }
        let executor = QueryExecutor(store: store, maximumResults: 100)
        var failures: [String] = []
        for seed in Self.seeds where await Self.check(seed, store: store, table: items, executor: executor, failures: &failures) != .answered {
            failures.append("seed \(seed) was not answered")
        }
        let inputs = FuzzBudget.inputs(default: 4_000)
        var random = SplitMix64(seed: 0x5155_4552)
        var counts: [Outcome: Int] = [:]
        for _ in 0..<inputs {
            let text = Self.mutate(Self.seeds.randomElement(using: &random)!, using: &random)
            counts[await Self.check(text, store: store, table: items, executor: executor, failures: &failures), default: 0] += 1
            if failures.count > 20 { break }
        }
        let answered = counts[.answered, default: 0]
        FuzzBudget.report("query", inputs: inputs, accepted: answered, refused: inputs - answered, failures: failures.count)
        #expect(failures.isEmpty, "\(failures.count) failures, first: \(failures.prefix(3))")
        // Every outcome is reached often.
        for outcome in [Outcome.refusedSyntax, .refusedBinding, .answered] {
            #expect(counts[outcome, default: 0] > inputs / 50, "\(outcome): \(counts[outcome, default: 0]) of \(inputs)")
        }
    }
}
