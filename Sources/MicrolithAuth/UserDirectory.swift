import Foundation
import GRDB
import MicrolithSchema
public import MicrolithStore
public import MicrolithTables
import NIOPosix
import Synchronization

/// The users of a store (``SystemTables/users`` in its default database): who may sign in, with
/// which password and roles. Names are non-empty text without control characters, `:` or spaces;
/// a role name is non-empty text without `,`.
public struct UserDirectory: Sendable {
    /// One user, without the password.
    public struct User: Sendable, Equatable {
        public var name: String
        public var roles: [String]

        public init(name: String, roles: [String]) {
            self.name = name
            self.roles = roles
        }
    }

    /// Why a change is refused.
    public struct Refusal: Error, Sendable, CustomStringConvertible, Equatable {
        public var description: String

        public init(description: String) {
            self.description = description
        }
    }

    public let store: Store
    /// The cost of new password hashes (``PasswordHash/defaultIterations`` unless a test lowers it).
    let iterations: Int
    static let database = Schema.defaultDatabase

    public init(store: Store) {
        self.init(store: store, iterations: PasswordHash.defaultIterations)
    }

    package init(store: Store, iterations: Int) {
        self.store = store
        self.iterations = iterations
    }

    /// Every user, by name.
    public func list() async throws -> [User] {
        try await store.read(database: Self.database) { db in
            try Row.fetchAll(db, sql: "SELECT name, roles FROM _microlith_users ORDER BY name").map { row in
                User(name: row["name"], roles: Self.roles(row["roles"]))
            }
        }
    }

    /// Adds user `name` with `password` and `roles`; refused when the name is taken or not valid.
    public func add(_ name: String, password: String, roles: [String]) async throws {
        try Self.check(name: name, password: password, roles: roles)
        let hash = try await hash(password)
        try await store.write(database: Self.database) { txn in
            guard try Row.fetchOne(txn.db, sql: "SELECT 1 FROM _microlith_users WHERE name = ?", arguments: [name]) == nil else {
                throw Refusal(description: "a user named \(name) exists already")
            }
            let now = txn.wallClock()
            try txn.db.execute(
                sql: "INSERT INTO _microlith_users(name, password, roles, created, updated) VALUES (?, ?, ?, ?, ?)",
                arguments: [name, hash, roles.joined(separator: ","), now, now])
        }
    }

    /// Sets the password of user `name` and spends their refresh tokens; refused when there is no such user.
    public func setPassword(_ name: String, password: String) async throws {
        try Self.check(name: name, password: password, roles: [])
        let hash = try await hash(password)
        try await update(name, sql: "UPDATE _microlith_users SET password = ?, updated = MAX(?, updated + 1) WHERE name = ?", hash)
    }

    /// Sets the roles of user `name` and spends their refresh tokens (the next sign-in carries the
    /// new roles); refused when there is no such user.
    public func setRoles(_ name: String, roles: [String]) async throws {
        try Self.check(name: name)
        try Self.check(roles: roles)
        try await update(
            name, sql: "UPDATE _microlith_users SET roles = ?, updated = MAX(?, updated + 1) WHERE name = ?", roles.joined(separator: ","))
    }

    /// Removes user `name` and their refresh tokens; returns whether there was one.
    public func remove(_ name: String) async throws -> Bool {
        try await store.write(database: Self.database) { txn in
            try txn.db.execute(sql: "DELETE FROM _microlith_users WHERE name = ?", arguments: [name])
            let removed = txn.db.changesCount > 0
            try txn.db.execute(sql: "DELETE FROM _microlith_refresh_tokens WHERE user = ?", arguments: [name])
            return removed
        }
    }

    /// The principal `name` signs in as with `password`, or `nil` when the name or the password is
    /// wrong. Slow by design (the password hash's cost): call it off the event loop.
    public func verify(_ name: String, password: String) async throws -> Principal? {
        try await versionedVerify(name, password: password)?.principal
    }

    /// The principal `name` signs in as with `password`, and the version of the user that was
    /// checked: its `updated` stamp, which every change to the user (password, roles) raises, so a
    /// connection signed in against this version is out of date once the stored stamp is greater.
    /// `nil` when the name or the password is wrong.
    public func versionedVerify(_ name: String, password: String) async throws -> (principal: Principal, version: Int64)? {
        let found = try await store.read(database: Self.database) { db -> (password: String, roles: String, updated: Int64)? in
            try Row.fetchOne(db, sql: "SELECT password, roles, updated FROM _microlith_users WHERE name = ?", arguments: [name]).map {
                ($0["password"], $0["roles"], $0["updated"])
            }
        }
        guard let found else {
            // As slow as a wrong password, so a name's existence does not show in the time taken.
            let iterations = iterations
            _ = try await NIOThreadPool.singleton.runIfActive { PasswordHash.verify(password, against: Self.decoy(iterations: iterations)) }
            return nil
        }
        let stored = found.password
        // The hash's cost runs on the thread pool, never on an event loop.
        guard try await NIOThreadPool.singleton.runIfActive({ PasswordHash.verify(password, against: stored) }) else { return nil }
        return (Principal(user: name, roles: Self.roles(found.roles)), found.updated)
    }

    /// A new hash of `password` at this directory's cost, computed on NIO's thread pool (it is slow
    /// by design and must hold neither an event loop nor a thread of the concurrency pool).
    private func hash(_ password: String) async throws -> String {
        let iterations = iterations
        return try await NIOThreadPool.singleton.runIfActive { try PasswordHash.make(password, iterations: iterations) }
    }

    private func update(_ name: String, sql: String, _ value: String) async throws {
        let changed = try await store.write(database: Self.database) { txn in
            try txn.db.execute(sql: sql, arguments: [value, txn.wallClock(), name])
            let changed = txn.db.changesCount
            try txn.db.execute(sql: "DELETE FROM _microlith_refresh_tokens WHERE user = ?", arguments: [name])
            return changed
        }
        guard changed > 0 else { throw Refusal(description: "there is no user named \(name)") }
    }

    static func roles(_ text: String) -> [String] {
        text.split(separator: ",").map(String.init)
    }

    /// A valid hash of no password anyone knows, at the cost of the directory's own hashes: verified
    /// for unknown names. Made once per cost.
    private static func decoy(iterations: Int) -> String {
        if let made = decoys.withLock({ $0[iterations] }) { return made }
        let made = (try? PasswordHash.make(UUID().uuidString, iterations: iterations)) ?? ""
        decoys.withLock { $0[iterations] = made }
        return made
    }
    private static let decoys = Mutex<[Int: String]>([:])

    static func check(name: String, password: String, roles: [String]) throws(Refusal) {
        try check(name: name)
        guard !password.isEmpty else { throw Refusal(description: "the password of \(name) is empty") }
        try check(roles: roles)
    }

    static func check(name: String) throws(Refusal) {
        guard !name.isEmpty, name.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7F && $0 != ":" }) else {
            throw Refusal(description: "a user name is text without spaces, control characters or ':'; got '\(name)'")
        }
    }

    static func check(roles: [String]) throws(Refusal) {
        for role in roles where role.isEmpty || role.contains(",") {
            throw Refusal(description: "a role name is non-empty text without ','; got '\(role)'")
        }
    }
}
