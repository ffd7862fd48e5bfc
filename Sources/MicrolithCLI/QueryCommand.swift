import ArgumentParser
import Foundation
import MicrolithJSON
import MicrolithQuery
import MicrolithRuntime
import MicrolithSchema
import MicrolithStore
import NIOCore

/// `microlith query APP 'Table/?conditions'`: a query in the REST URL language, or one record
/// (`Table/id`), run against the data folder read-only, whether a server runs or not.
struct QueryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query",
        abstract: "Run a query in the REST URL language (Table/?…) or read a record (Table/id) from the data folder, read-only.",
        discussion: """
            Each record is printed on a line of its own; the count, the plan and the time go to standard error. \
            The data folder is opened read-only, without migrating: it must be at this schema.graphql (a server \
            start migrates it). Table rules and roles do not apply: this reads the files, as an operator.
            """)

    @OptionGroup var location: UserCommand.Location

    @Argument(help: "What to read: Table/?query, Table/?query with a prefix (Table/prefix/?query), or Table/id.")
    var target: String

    @Option(help: "The most records a query may return.")
    var maxResults = 10_000

    func run() async throws {
        var path = Substring(target)
        while path.first == "/" { path = path.dropFirst() }
        let query = path.firstIndex(of: "?").map { String(path[path.index(after: $0)...]) }
        if let mark = path.firstIndex(of: "?") { path = path[..<mark] }
        guard !path.isEmpty else { throw UserCommand.fail("name a table and what to read: Table/?query or Table/id, got '\(target)'") }
        // `Table` alone reads as `Table/`: every record, up to --max-results.
        let slash = path.firstIndex(of: "/") ?? path.endIndex
        let tableName = String(path[..<slash])
        let rest = slash < path.endIndex ? String(path[path.index(after: slash)...]) : ""
        let (app, configuration) = try location.load()
        var storeConfiguration = configuration.store
        storeConfiguration.readOnly = true
        let store: Store
        do {
            store = try Store.open(schema: app.schema, configuration: storeConfiguration)
        } catch let error as StoreError {
            throw UserCommand.fail(error.message)
        }
        defer { store.close() }
        let table = try ExportCommand.layout(tableName, in: store)
        let started = ContinuousClock.now
        do {
            if !rest.isEmpty && !rest.hasSuffix("/") {
                guard query == nil else { throw UserCommand.fail("a query goes after the table or a prefix ending in '/': Table/?query") }
                let key = rest.removingPercentEncoding ?? rest
                let keyType = table.definition.primaryKeyAttribute.type
                guard let id = RecordID(text: key, type: keyType) else {
                    throw UserCommand.fail("'\(key)' is not a key of \(table.name) (\(RecordID.keyKind(keyType)))")
                }
                guard let record = try await store.get(table, id) else { throw UserCommand.fail("\(table.name) has no record \(key)") }
                print(String(buffer: record.json))
                return
            }
            var parsed = try QueryParser.parse(query ?? "")
            if !rest.isEmpty {
                let prefix = String(rest.dropLast()).removingPercentEncoding ?? String(rest.dropLast())
                let key = table.definition.primaryKeyAttribute
                guard RecordID(text: "a", type: key.type) != nil else {
                    throw UserCommand.fail("a key prefix needs string keys; \(table.name) has \(RecordID.keyKind(key.type)) keys")
                }
                let within = Condition.compare(Comparison(path: [key.name], op: .sw, value: .typed(.string(prefix))))
                parsed.filter = parsed.filter.map { .and([within, $0]) } ?? within
                if parsed.sort.isEmpty { parsed.sort = [SortKey(path: [key.name])] }
            }
            let bound = try parsed.bound(to: table.definition, schema: store.schema)
            if let limit = bound.limit, limit.count > maxResults {
                throw UserCommand.fail("limit(\(limit.count)) is above --max-results \(maxResults)")
            }
            for name in bound.undeclaredAttributes(in: table.definition, schema: store.schema) {
                FileHandle.standardError.write(Data("warning: \(name)\n".utf8))
            }
            let result = try await QueryExecutor(store: store, maximumResults: maxResults).execute(bound, table: table)
            var out = ""
            for row in result.rows {
                out += row.json ?? String(decoding: JSONWriter.encode(.object(row.record)), as: UTF8.self)
                out += "\n"
            }
            FileHandle.standardOutput.write(Data(out.utf8))
            let ms = (ContinuousClock.now - started).milliseconds
            FileHandle.standardError.write(
                Data("\(result.rows.count) record\(result.rows.count == 1 ? "" : "s"); plan: \(result.plan); \(String(format: "%.3f", ms)) ms\n".utf8)
            )
        } catch let error as QuerySyntaxError {
            throw UserCommand.fail("the query: \(error.description)")
        } catch let error as QueryError {
            throw UserCommand.fail("the query: \(error.description)")
        } catch let error as StoreError {
            throw UserCommand.fail(error.message)
        }
    }
}
