import ArgumentParser
import Foundation
import Testing

@testable import MicrolithCLI

/// A temporary app folder with the given files.
private struct TemporaryApp {
    let path: String

    init(_ files: [String: String]) throws {
        path = (NSTemporaryDirectory() as NSString).appendingPathComponent("microlith-cli-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        for (name, contents) in files {
            try contents.write(toFile: (path as NSString).appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

private let goodSchema = """
    type Todo @table @export {
        id: ID @primaryKey
        title: String!
        done: Boolean @indexed
    }
    """

@Suite("microlith: argument parsing")
struct ArgumentParsingTests {
    @Test func serveWithEveryOption() throws {
        let command = try MicrolithCommand.parseAsRoot([
            "serve", "./app", "--http-port", "8080", "--host", "0.0.0.0", "--data-dir", "/tmp/data", "--durability", "normal",
            "--cache-mb", "16",
        ])
        let serve = try #require(command as? ServeCommand)
        #expect(serve.appDirectory == "./app")
        #expect(serve.httpPort == 8080)
        #expect(serve.host == "0.0.0.0")
        #expect(serve.dataDir == "/tmp/data")
        #expect(serve.durability == "normal")
        #expect(serve.cacheMB == 16)
    }

    @Test func serveWithDefaults() throws {
        let serve = try #require(try MicrolithCommand.parseAsRoot(["serve", "examples/todo"]) as? ServeCommand)
        #expect(serve.appDirectory == "examples/todo")
        #expect(serve.httpPort == nil)
        #expect(serve.host == nil)
        #expect(serve.dataDir == nil)
        #expect(serve.durability == nil)
        #expect(serve.cacheMB == nil)
    }

    @Test(arguments: ["0", "65535"])
    func portsAtTheEdgesAreAccepted(_ port: String) throws {
        let serve = try #require(try MicrolithCommand.parseAsRoot(["serve", "app", "--http-port", port]) as? ServeCommand)
        #expect(serve.httpPort == Int(port))
    }

    struct BadArguments: Sendable, CustomTestStringConvertible {
        var arguments: [String]
        var message: String
        var testDescription: String { arguments.joined(separator: " ") }
    }

    static let badArguments: [BadArguments] = [
        BadArguments(arguments: ["serve", "app", "--http-port", "65536"], message: "--http-port must be between 0 and 65535"),
        BadArguments(arguments: ["serve", "app", "--http-port=-1"], message: "--http-port must be between 0 and 65535, got -1"),
        BadArguments(arguments: ["serve", "app", "--http-port", "eighty"], message: "eighty"),
        BadArguments(arguments: ["serve", "app", "--durability", "sometimes"], message: "--durability must be full or normal"),
        BadArguments(arguments: ["serve", "app", "--cache-mb=-1"], message: "--cache-mb must be ≥ 0"),
        BadArguments(arguments: ["serve", "app", "--cache-mb", "-1"], message: "--cache-mb"),
        BadArguments(arguments: ["serve"], message: "app-directory"),
        BadArguments(arguments: ["serve", "app", "--verbose"], message: "--verbose"),
        BadArguments(arguments: ["check"], message: "app-directory"),
        BadArguments(arguments: ["check", "a", "b"], message: "b"),
        BadArguments(arguments: ["launch", "app"], message: "launch"),
    ]

    @Test(arguments: badArguments)
    func badArgumentsAreRefusedWithAMessage(_ bad: BadArguments) {
        do {
            let command = try MicrolithCommand.parseAsRoot(bad.arguments)
            Issue.record("parsed as \(type(of: command))")
        } catch {
            let message = MicrolithCommand.message(for: error)
            #expect(message.contains(bad.message), "\(message)")
            #expect(MicrolithCommand.exitCode(for: error) != .success)
        }
    }

    @Test func checkTakesTheAppFolder() throws {
        let check = try #require(try MicrolithCommand.parseAsRoot(["check", "some/app"]) as? CheckCommand)
        #expect(check.appDirectory == "some/app")
    }

    @Test func helpListsTheSubcommands() {
        let help = MicrolithCommand.helpMessage()
        #expect(help.contains("serve"))
        #expect(help.contains("check"))
        let serveHelp = MicrolithCommand.helpMessage(for: ServeCommand.self)
        for option in ["--http-port", "--host", "--data-dir", "--durability", "--cache-mb"] {
            #expect(serveHelp.contains(option), "\(option) missing from: \(serveHelp)")
        }
    }
}

@Suite("microlith check")
struct CheckCommandTests {
    @Test func aGoodFolderPasses() async throws {
        let app = try TemporaryApp(["schema.graphql": goodSchema, "microlith.yaml": "http:\n  port: 8080\n"])
        defer { app.remove() }
        let check = try #require(try MicrolithCommand.parseAsRoot(["check", app.path]) as? CheckCommand)
        try await check.run()
    }

    @Test func aBadSchemaFails() async throws {
        let app = try TemporaryApp(["schema.graphql": "type Todo @table {\n    title: String\n}\n"])
        defer { app.remove() }
        let check = try #require(try MicrolithCommand.parseAsRoot(["check", app.path]) as? CheckCommand)
        await #expect(throws: ExitCode.failure) { try await check.run() }
    }

    @Test func aMissingSchemaFails() async throws {
        let app = try TemporaryApp([:])
        defer { app.remove() }
        let check = try #require(try MicrolithCommand.parseAsRoot(["check", app.path]) as? CheckCommand)
        await #expect(throws: ExitCode.failure) { try await check.run() }
    }

    @Test func aMissingFolderFails() async throws {
        let check = try #require(try MicrolithCommand.parseAsRoot(["check", "/nonexistent/microlith-\(UUID().uuidString)"]) as? CheckCommand)
        await #expect(throws: ExitCode.failure) { try await check.run() }
    }

    @Test func badConfigurationFails() async throws {
        let app = try TemporaryApp(["schema.graphql": goodSchema, "microlith.yaml": "http:\n  prot: 8080\n"])
        defer { app.remove() }
        let check = try #require(try MicrolithCommand.parseAsRoot(["check", app.path]) as? CheckCommand)
        await #expect(throws: ExitCode.failure) { try await check.run() }
    }

    @Test func checkNeverCreatesADataFolder() async throws {
        let app = try TemporaryApp(["schema.graphql": goodSchema])
        defer { app.remove() }
        let check = try #require(try MicrolithCommand.parseAsRoot(["check", app.path]) as? CheckCommand)
        try await check.run()
        #expect(!FileManager.default.fileExists(atPath: (app.path as NSString).appendingPathComponent(".microlith")))
    }
}
