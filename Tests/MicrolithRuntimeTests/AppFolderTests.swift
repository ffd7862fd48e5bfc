import Foundation
import MicrolithHTTP
import MicrolithJSON
import MicrolithRuntime
import MicrolithSchema
import MicrolithStore
import Testing

/// A temporary app folder with the given files (relative path → contents).
struct TemporaryApp {
    let path: String

    init(_ files: [String: String]) throws {
        path = (NSTemporaryDirectory() as NSString).appendingPathComponent("microlith-runtime-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        for (name, contents) in files { try write(name, contents) }
    }

    func write(_ name: String, _ contents: String) throws {
        let file = (path as NSString).appendingPathComponent(name)
        try FileManager.default.createDirectory(
            atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try contents.write(toFile: file, atomically: true, encoding: .utf8)
    }

    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

let todoSchema = """
    type Todo @table @export {
        id: ID @primaryKey
        title: String!
        done: Boolean @indexed
    }
    type Person @table @export(name: "People") {
        id: ID @primaryKey
        name: String!
    }
    """

@Suite("AppFolder")
struct AppFolderTests {
    @Test func loadsASchemaAndFindsTheOptionalParts() throws {
        let app = try TemporaryApp([
            "schema.graphql": todoSchema, "microlith.yaml": "http:\n  port: 1\n", "data/Todo.json": "[]", "data/People.json": "[]",
            "data/readme.txt": "not a seed file", "web/index.html": "<html></html>",
        ])
        defer { app.remove() }
        let folder = try AppFolder.load(app.path)
        #expect(folder.path == app.path)
        #expect(folder.schema.tables.map(\.name) == ["Todo", "Person"])
        #expect(folder.configurationFile == app.file("microlith.yaml"))
        #expect(folder.webRoot == app.file("web"))
        #expect(folder.seedFiles == [app.file("data/People.json"), app.file("data/Todo.json")])
    }

    @Test func optionalPartsMayBeMissing() throws {
        let app = try TemporaryApp(["schema.graphql": todoSchema])
        defer { app.remove() }
        let folder = try AppFolder.load(app.path)
        #expect(folder.configurationFile == nil)
        #expect(folder.webRoot == nil)
        #expect(folder.seedFiles.isEmpty)
    }

    @Test func aMissingFolderIsAnError() {
        let path = (NSTemporaryDirectory() as NSString).appendingPathComponent("microlith-missing-\(UUID().uuidString)")
        let message = runtimeErrorMessage { _ = try AppFolder.load(path) }
        #expect(message == "app folder \(path) does not exist")
    }

    @Test func aFileInsteadOfAFolderIsAnError() throws {
        let app = try TemporaryApp(["schema.graphql": todoSchema])
        defer { app.remove() }
        let message = runtimeErrorMessage { _ = try AppFolder.load(app.file("schema.graphql")) }
        #expect(message?.contains("does not exist") == true)
    }

    @Test func aMissingSchemaIsAnErrorNamingTheFile() throws {
        let app = try TemporaryApp(["microlith.yaml": "http:\n  port: 1\n"])
        defer { app.remove() }
        let message = runtimeErrorMessage { _ = try AppFolder.load(app.path) }
        #expect(message?.contains(app.file("schema.graphql")) == true, "\(message ?? "")")
        #expect(message?.contains("missing") == true)
    }

    @Test func aSchemaErrorNamesFileLineAndColumn() throws {
        let app = try TemporaryApp(["schema.graphql": "type Todo @table {\n    id: ID @primaryKey\n    title: Strin\n}\n"])
        defer { app.remove() }
        let message = runtimeErrorMessage { _ = try AppFolder.load(app.path) }
        #expect(message?.hasPrefix("\(app.file("schema.graphql")):3:") == true, "\(message ?? "")")
        #expect(message?.contains(": error: ") == true)
        #expect(message?.contains("Strin") == true)
    }
}

@Suite("Seeder and MicrolithServer.start")
struct SeederTests {
    /// Starts a server over `app` with its data in the app folder and no environment.
    private func start(_ app: TemporaryApp, environment: [String: String] = [:]) async throws -> MicrolithServer {
        try await MicrolithServer.start(appDirectory: app.path, environment: environment) { $0.store.durability = .normal }
    }

    @Test func seedsOnceOnFirstStart() async throws {
        let app = try TemporaryApp([
            "schema.graphql": todoSchema,
            "data/Todo.json": #"[{"id":"t1","title":"first","done":false},{"title":"no key"}]"#,
            "data/People.json": #"[{"id":"p1","name":"Ada"}]"#,
        ])
        defer { app.remove() }

        let server = try await start(app)
        let todo = try #require(server.store.table(name: "Todo"))
        let person = try #require(server.store.table(name: "Person"))
        #expect(try await server.store.get(todo, .string("t1"))?.record["title"] == "first")
        #expect(try await server.store.get(person, .string("p1"))?.record["name"] == "Ada")
        #expect(try await server.store.changes(after: 0).count == 3)
        #expect(try await Seeder.wasSeeded(server.store))

        let again = try await Seeder(store: server.store, logger: server.logger).seedIfNeeded(files: server.app.seedFiles)
        #expect(again == 0)
        server.store.close()

        let restarted = try await start(app)
        defer { restarted.store.close() }
        #expect(try await restarted.store.changes(after: 0).count == 3, "a restart does not seed again")
    }

    @Test func seedingReportsHowManyRecordsItWrote() async throws {
        let app = try TemporaryApp(["schema.graphql": todoSchema])
        defer { app.remove() }
        let server = try await start(app)
        defer { server.store.close() }
        #expect(try await Seeder(store: server.store, logger: server.logger).seedIfNeeded(files: []) == 0)
        #expect(try await !Seeder.wasSeeded(server.store), "nothing to seed, no marker")

        try app.write("seed/Todo.json", #"[{"id":"a","title":"A"},{"id":"b","title":"B"}]"#)
        let count = try await Seeder(store: server.store, logger: server.logger).seedIfNeeded(files: [app.file("seed/Todo.json")])
        #expect(count == 2)
    }

    struct BadSeed: Sendable, CustomTestStringConvertible {
        var name: String
        var contents: String
        var expected: String
        var testDescription: String { "\(name): \(contents)" }
    }

    static let badSeeds: [BadSeed] = [
        BadSeed(name: "Nope.json", contents: "[]", expected: "no table named Nope"),
        BadSeed(name: "Todo.json", contents: #"[{"id":"t1","title":"a"},"#, expected: "malformed JSON at byte"),
        BadSeed(name: "Todo.json", contents: #"{"id":"t1"}"#, expected: "JSON array"),
        BadSeed(name: "Todo.json", contents: #"[{"id":"t1","title":"a"},3]"#, expected: "element 1 is not a JSON object"),
        BadSeed(name: "Todo.json", contents: #"[{"id":"t1","title":"a"},{"id":"t2","title":5}]"#, expected: "element 1: attribute 'title'"),
    ]

    @Test(arguments: badSeeds)
    func badSeedFilesStopTheStartNamingTheFile(_ bad: BadSeed) async throws {
        let app = try TemporaryApp(["schema.graphql": todoSchema, "data/\(bad.name)": bad.contents])
        defer { app.remove() }
        do {
            let server = try await start(app)
            server.store.close()
            Issue.record("the server started despite a bad seed file")
        } catch let error as RuntimeError {
            #expect(error.message.contains(app.file("data/\(bad.name)")), "\(error.message)")
            #expect(error.message.contains(bad.expected), "\(error.message)")
        }

        // Nothing of the bad file was written: after fixing it, seeding happens in full.
        try FileManager.default.removeItem(atPath: app.file("data/\(bad.name)"))
        let server = try await start(app)
        defer { server.store.close() }
        #expect(try await server.store.changes(after: 0).isEmpty)
        #expect(try await !Seeder.wasSeeded(server.store))
    }

    @Test func aRestoredBackupIsNotSeededAgainAndTheOldMarkerFileCounts() async throws {
        let app = try TemporaryApp([
            "schema.graphql": todoSchema, "data/Todo.json": #"[{"id":"t1","title":"seeded"}]"#,
        ])
        defer { app.remove() }
        let server = try await start(app)
        let todo = try #require(server.store.table(name: "Todo"))
        try await server.store.write { txn in _ = try txn.put(todo, id: .string("t1"), body: ["title": "changed after seeding"]) }
        let backup = app.file("backup")
        _ = try await server.store.backup(to: backup)
        server.store.close()

        // Restored into a new folder: the mark travels in the database, so the seed file does
        // not overwrite what the backup holds.
        let restored = app.file("restored")
        _ = try Backup.restore(from: backup, into: restored, replace: false)
        let again = try await MicrolithServer.start(appDirectory: app.path, environment: [:]) {
            $0.store.durability = .normal
            $0.store.directory = restored
        }
        #expect(try await again.store.get(todo, .string("t1"))?.record["title"] == "changed after seeding")
        again.store.close()

        // A folder an earlier version seeded has only the marker file.
        let legacy = app.file("legacy")
        try FileManager.default.createDirectory(atPath: legacy, withIntermediateDirectories: true)
        #expect(
            FileManager.default.createFile(atPath: (legacy as NSString).appendingPathComponent(Seeder.markerName), contents: Data("seeded\n".utf8)))
        let old = try await MicrolithServer.start(appDirectory: app.path, environment: [:]) {
            $0.store.durability = .normal
            $0.store.directory = legacy
        }
        defer { old.store.close() }
        #expect(try await old.store.get(todo, .string("t1")) == nil)
        #expect(try await Seeder.wasSeeded(old.store))
    }

    @Test func configurationLayersYAMLThenEnvironmentThenCode() async throws {
        let app = try TemporaryApp([
            "schema.graphql": todoSchema, "microlith.yaml": "http:\n  port: 1000\n  host: yaml-host\n  maxResults: 7\n",
        ])
        defer { app.remove() }
        let server = try await MicrolithServer.start(
            appDirectory: app.path, environment: ["MICROLITH_HTTP_PORT": "2000", "MICROLITH_HTTP_HOST": "env-host"]
        ) { c in
            c.http.port = 3000
            c.store.durability = .normal
        }
        defer { server.store.close() }
        #expect(server.configuration.http.port == 3000)
        #expect(server.configuration.http.host == "env-host")
        #expect(server.configuration.http.maximumResults == 7)
        #expect(server.configuration.store.directory == app.file(".microlith"))
        #expect(server.store.configuration.directory == app.file(".microlith"))
    }

    @Test func startFailsCleanlyOnBadConfiguration() async throws {
        let app = try TemporaryApp(["schema.graphql": todoSchema, "microlith.yaml": "http:\n  port: x\n"])
        defer { app.remove() }
        await #expect(throws: RuntimeError.self) { _ = try await start(app) }
        await #expect(throws: RuntimeError.self) {
            _ = try await MicrolithServer.start(appDirectory: app.path, environment: ["MICROLITH_LOG_LEVEL": "nope"])
        }
    }

    @Test func anIncompatibleDataFolderIsARuntimeError() async throws {
        let app = try TemporaryApp(["schema.graphql": todoSchema, "data/Todo.json": #"[{"id":"t1","title":"a"}]"#])
        defer { app.remove() }
        try await start(app).store.close()
        try app.write("schema.graphql", todoSchema.replacingOccurrences(of: "id: ID @primaryKey\n    title", with: "id: Int @primaryKey\n    title"))
        do {
            let server = try await start(app)
            server.store.close()
            Issue.record("the server started over an incompatible data folder")
        } catch let error as RuntimeError {
            #expect(error.message.contains("primary key"), "\(error.message)")
        }
    }
}
