import ArgumentParser
import Foundation
import MicrolithAuth
import MicrolithRuntime
import MicrolithStore
import MicrolithTables

/// `microlith user add|passwd|roles|remove|list|rotate-key DIR …`: the users who may sign in, kept in the
/// app's store, and the key that signs their bearer tokens.
/// Passwords are read from `MICROLITH_PASSWORD`, else from the first line of standard input, never
/// from the command line (where other users of the machine could read them).
struct UserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user",
        abstract: "Add, change, remove or list the users who may sign in; rotate the key that signs their tokens.",
        subcommands: [Add.self, Passwd.self, SetRoles.self, Remove.self, List.self, RotateKey.self]
    )

    struct Location: ParsableArguments {
        @Argument(help: "The app folder.")
        var appDirectory: String

        @Option(name: .customLong("data-dir"), help: "Folder of the database files (default <app>/.microlith, or store.dataDir).")
        var dataDir: String?

        /// The app folder's configuration, as `serve` reads it, with `--data-dir` applied.
        func load() throws -> (AppFolder, RuntimeConfiguration) {
            try UserCommand.load(appDirectory: appDirectory, dataDir: dataDir)
        }

        /// The data folder the app uses.
        func dataDirectory() throws -> String { try load().1.store.directory }

        /// The app's store, opened read-only, without migrating (``StoreConfiguration/readOnly``).
        func openReadOnly() throws -> Store {
            let (app, configuration) = try load()
            var settings = configuration.store
            settings.readOnly = true
            do {
                return try Store.open(schema: app.schema, configuration: settings)
            } catch let error as StoreError {
                throw fail(error.message)
            }
        }

        /// The app's store, opened (and migrated) as `serve` opens it; with `exclusive`, only while
        /// nothing else has the data folder open, and holding it alone.
        func openUsers(exclusive: Bool = false) throws -> (UserDirectory, Store) {
            let (app, configuration) = try load()
            var settings = configuration.store
            settings.exclusiveAccess = exclusive
            do {
                let store = try Store.open(schema: app.schema, configuration: settings)
                return (UserDirectory(store: store), store)
            } catch let error as RuntimeError {
                throw fail(error.message)
            } catch let error as StoreError {
                throw fail(error.message)
            }
        }
    }

    /// The app folder `appDirectory` and its configuration, as `serve` reads them (`microlith.yaml`,
    /// then `MICROLITH_*` variables), with `dataDir` applied when given; an error message otherwise.
    static func load(appDirectory: String, dataDir: String?) throws -> (AppFolder, RuntimeConfiguration) {
        do {
            let app = try AppFolder.load(appDirectory)
            var configuration = RuntimeConfiguration(appDirectory: appDirectory)
            if let file = app.configurationFile {
                try configuration.apply(yaml: try String(contentsOfFile: file, encoding: .utf8), file: file)
            }
            try configuration.apply(environment: ProcessInfo.processInfo.environment)
            if let dataDir { configuration.store.directory = dataDir }
            return (app, configuration)
        } catch let error as RuntimeError {
            throw fail(error.message)
        }
    }

    /// Prints `message` as an error and exits non-zero.
    static func fail(_ message: String) -> ExitCode {
        FileHandle.standardError.write(Data("error: \(message)\n".utf8))
        return ExitCode.failure
    }

    /// The password, from `MICROLITH_PASSWORD` or the first line of standard input.
    static func password() throws -> String {
        if let text = ProcessInfo.processInfo.environment["MICROLITH_PASSWORD"], !text.isEmpty { return text }
        guard let line = readLine(strippingNewline: true), !line.isEmpty else {
            throw fail("give the password in MICROLITH_PASSWORD or on the first line of standard input")
        }
        return line
    }

    /// Runs `work` on `users`, closing the store after; a refusal is an error message.
    static func run(_ location: Location, _ work: (UserDirectory) async throws -> Void) async throws {
        let (users, store) = try location.openUsers()
        defer { store.close() }
        do {
            try await work(users)
        } catch let refusal as UserDirectory.Refusal {
            throw fail(refusal.description)
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a user with a password and roles.")
        @OptionGroup var location: Location
        @Argument(help: "The user's name.") var name: String
        @Option(name: .customLong("role"), help: "A role the user holds (repeat for several; super_user may do everything).")
        var roles: [String] = []

        func run() async throws {
            let password = try UserCommand.password()
            try await UserCommand.run(location) { users in
                try await users.add(name, password: password, roles: roles)
                print("added \(name) with roles: \(roles.isEmpty ? "none" : roles.joined(separator: ", "))")
            }
        }
    }

    struct Passwd: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set a user's password.")
        @OptionGroup var location: Location
        @Argument(help: "The user's name.") var name: String

        func run() async throws {
            let password = try UserCommand.password()
            try await UserCommand.run(location) { users in
                try await users.setPassword(name, password: password)
                print("changed the password of \(name) (a running server notices within a minute)")
            }
        }
    }

    struct SetRoles: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "roles", abstract: "Set a user's roles (none without --role).")
        @OptionGroup var location: Location
        @Argument(help: "The user's name.") var name: String
        @Option(name: .customLong("role"), help: "A role the user holds (repeat for several).")
        var roles: [String] = []

        func run() async throws {
            try await UserCommand.run(location) { users in
                try await users.setRoles(name, roles: roles)
                print("\(name) now holds: \(roles.isEmpty ? "no role" : roles.joined(separator: ", ")) (a running server notices within a minute)")
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a user.")
        @OptionGroup var location: Location
        @Argument(help: "The user's name.") var name: String

        func run() async throws {
            try await UserCommand.run(location) { users in
                guard try await users.remove(name) else { throw UserDirectory.Refusal(description: "there is no user named \(name)") }
                print("removed \(name)")
            }
        }
    }

    struct RotateKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-key",
            abstract: "Make a new key to sign bearer access tokens with; the old ones verify until their tokens expire.")
        @OptionGroup var location: Location
        @Flag(name: .customLong("revoke-others"), help: "Delete every other key: every access token issued so far stops working.")
        var revokeOthers = false

        func run() async throws {
            try await UserCommand.run(location) { users in
                let issuer = TokenIssuer(store: users.store)
                try await issuer.rotateKey(revokingOthers: revokeOthers)
                let keys = try await issuer.keys()
                print("new signing key \(keys.first?.kid ?? "?"); \(keys.count) key\(keys.count == 1 ? "" : "s") in all")
                if revokeOthers {
                    print("every earlier access token is refused (by a running server within two minutes); refresh tokens still work")
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the users and their roles.")
        @OptionGroup var location: Location

        func run() async throws {
            try await UserCommand.run(location) { users in
                for user in try await users.list() {
                    print("\(user.name)\t\(user.roles.joined(separator: ","))")
                }
            }
        }
    }
}
