import ArgumentParser
import Foundation
import MicrolithJSON
import MicrolithSchema
import MicrolithStore
import NIOCore

/// `microlith export APP TABLE [--to FILE]`: a table's records as JSON lines, one record per
/// line in key order, read from one snapshot per page while a server may go on serving.
struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a table's records as JSON lines (one record per line, in key order).")

    @OptionGroup var location: UserCommand.Location

    @Argument(help: "The table (its type name or its name).")
    var table: String

    @Option(name: .customLong("to"), help: "The file to write (default: standard output).")
    var destination: String?

    func run() async throws {
        // Read-only: beside a running server, nothing is migrated or written.
        let store = try location.openReadOnly()
        defer { store.close() }
        let layout = try ExportCommand.layout(table, in: store)
        let output: FileHandle
        if let destination {
            guard FileManager.default.createFile(atPath: destination, contents: nil) else {
                throw UserCommand.fail("cannot create \(destination)")
            }
            guard let handle = FileHandle(forWritingAtPath: destination) else { throw UserCommand.fail("cannot write \(destination)") }
            output = handle
        } else {
            output = FileHandle.standardOutput
        }
        var after: RecordID?
        var count = 0
        while true {
            let page = try await store.snapshot(layout, after: after, limit: 1_000)
            var bytes: [UInt8] = []
            for change in page {
                guard let record = change.record else { continue }
                bytes.append(contentsOf: record.json.readableBytesView)
                bytes.append(0x0A)
                count += 1
            }
            try output.write(contentsOf: bytes)
            guard page.count == 1_000, let last = page.last else { break }
            after = last.id
        }
        if destination != nil {
            try output.close()
            FileHandle.standardError.write(Data("exported \(count) record\(count == 1 ? "" : "s") of \(layout.name)\n".utf8))
        }
    }

    /// The table `name` names (its export name, type name or table name), or an error listing the tables.
    static func layout(_ name: String, in store: Store) throws -> TableLayout {
        if let layout = store.table(anyName: name) { return layout }
        let known = store.tables.map(\.definition.typeName).sorted().joined(separator: ", ")
        throw UserCommand.fail("no table named '\(name)' in the schema; tables: \(known.isEmpty ? "none" : known)")
    }
}

/// `microlith import APP TABLE FILE`: puts every record of a JSON-lines file into a table, in one
/// transaction (all or nothing), with the server stopped.
struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Put the records of a JSON-lines file into a table, all or nothing; the server must be stopped.",
        discussion: """
            Each non-empty line is one record with its primary key; a record with that key is replaced. Every \
            record is checked against the schema as a PUT is. A running server keeps records in its cache, so \
            the import refuses to run beside one: stop it, or PUT the records over HTTP.
            """)

    @OptionGroup var location: UserCommand.Location

    @Argument(help: "The table (its type name or its name).")
    var table: String

    @Argument(help: "The JSON-lines file (- for standard input).")
    var file: String

    func run() async throws {
        let data: Data
        if file == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            guard let read = FileManager.default.contents(atPath: file) else { throw UserCommand.fail("cannot read \(file)") }
            data = read
        }
        var records: [(line: Int, object: JSONObject)] = []
        var lineNumber = 0
        for line in data.split(separator: 0x0A, omittingEmptySubsequences: false) {
            lineNumber += 1
            let trimmed = line.last == 0x0D ? line.dropLast() : line[...]
            if trimmed.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            do {
                guard case .object(let object) = try JSONParser.parse(trimmed) else {
                    throw UserCommand.fail("\(file):\(lineNumber): a line must hold one JSON object (one record)")
                }
                records.append((lineNumber, object))
            } catch let error as JSONParseError {
                throw UserCommand.fail("\(file):\(lineNumber): not JSON: \(error.reason) at byte \(error.offset + 1)")
            }
        }
        // Alone: a server keeps records in its cache, and would not see these writes.
        let store: Store
        do {
            (_, store) = try location.openUsers(exclusive: true)
        } catch let error as ExitCode {
            FileHandle.standardError.write(Data("(to add records to a running server, PUT them over HTTP)\n".utf8))
            throw error
        }
        defer { store.close() }
        do {
            let layout = try ExportCommand.layout(table, in: store)
            let key = layout.definition.primaryKeyAttribute
            let batch = records
            try await store.write(database: layout.definition.database) { txn in
                for (line, object) in batch {
                    guard let value = object[key.name], let id = RecordID(json: value, type: key.type) else {
                        throw StoreError(.invalidID, "line \(line): the record needs its primary key '\(key.name)' (\(RecordID.keyKind(key.type)))")
                    }
                    do {
                        _ = try txn.put(layout, id: id, body: object)
                    } catch let error as StoreError {
                        throw StoreError(error.code, "line \(line): \(error.message)", attribute: error.attribute)
                    }
                }
            }
            print("imported \(records.count) record\(records.count == 1 ? "" : "s") into \(layout.name)")
        } catch let error as StoreError {
            throw UserCommand.fail("\(file): \(error.message); nothing was imported")
        }
    }
}
