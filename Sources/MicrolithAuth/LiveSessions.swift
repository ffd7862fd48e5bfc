import GRDB
import MicrolithStore
public import MicrolithTables
import Synchronization

/// The long-lived connections signed in as a user (MQTT clients, WebSocket and Server-Sent Events
/// subscriptions), so that a change to the user ends them instead of letting them keep the rights
/// they signed in with.
///
/// A door registers a connection once its user has signed in, with how to end it, and
/// unregisters it when it closes. ``audit()`` reads the registered users from the store and ends
/// each connection whose user was removed, whose roles changed, or whose password changed since
/// the connection's credentials were checked (``Authenticator/Verified/checked``, the version of
/// the user they were checked against). The runtime audits after every change made through `/_users` (at
/// once) and every `auth.sessionCheckSeconds` (changes made by the command line in another process).
public final class LiveSessions: Sendable {
    /// A registration, to give back with ``unregister(_:)``.
    public struct Ticket: Sendable, Hashable {
        let id: UInt64
    }

    private struct Entry: Sendable {
        let principal: Principal
        /// The version of the user the connection's credentials were checked against (a users'
        /// `updated` stamp, ms), or the store's wall clock when it registered.
        let since: Int64
        let end: @Sendable (_ reason: String) -> Void
    }

    let users: UserDirectory
    private let entries = Mutex<[UInt64: Entry]>([:])
    private let nextID = Atomic<UInt64>(0)

    init(users: UserDirectory) {
        self.users = users
    }

    /// The store's wall clock now (ms), the registration time of a connection that gives none.
    public func clock() -> Int64 {
        users.store.configuration.wallClock()
    }

    /// When the credentials of the request being served were checked
    /// (``Authenticator/Verified/checked``), set by the HTTP authentication for a request that
    /// opens an event stream.
    @TaskLocal public static var checkedSince: Int64?

    /// How many connections are registered.
    public var count: Int { entries.withLock { $0.count } }

    /// Registers a connection of `principal` (nothing for the anonymous role: it has no user to
    /// change); `end` is called, once, with the reason, when an audit finds the user changed since
    /// `since` (``Authenticator/Verified/checked``; now by default).
    public func register(_ principal: Principal, since: Int64? = nil, end: @escaping @Sendable (_ reason: String) -> Void) -> Ticket? {
        guard principal.user != nil else { return nil }
        let id = nextID.add(1, ordering: .relaxed).newValue
        let entry = Entry(principal: principal, since: since ?? clock(), end: end)
        entries.withLock { $0[id] = entry }
        return Ticket(id: id)
    }

    /// Why a connection of `principal`, whose credentials were checked against version `since` of
    /// the user, may not open: the user was removed, or changed roles or password since (credentials
    /// the authenticator still remembers from before a change made by another process, or an
    /// access token issued before it); `nil` when it may. The doors ask before they register, so
    /// such a client is refused at once (and signs in again) instead of being let in and ended at
    /// the next ``audit()``.
    public func outdated(_ principal: Principal, since: Int64) async throws -> String? {
        guard let name = principal.user else { return nil }
        let current = try await users.current([name])
        return Self.reason(name, roles: principal.roles, since: since, current: current[name])
    }

    /// Why a connection of `name` with `roles`, checked at version `since`, must end, given the
    /// user's current roles and version (`nil`: removed); `nil` when it need not.
    private static func reason(_ name: String, roles: [String], since: Int64, current: (roles: [String], updated: Int64)?) -> String? {
        guard let current else { return "the user \(name) was removed" }
        if Set(current.roles) != Set(roles) { return "\(name)'s roles changed; sign in again" }
        if current.updated > since { return "\(name)'s password changed; sign in again" }
        return nil
    }

    /// Forgets a connection that closed.
    public func unregister(_ ticket: Ticket?) {
        guard let ticket else { return }
        _ = entries.withLock { $0.removeValue(forKey: ticket.id) }
    }

    /// Ends the registered connections whose user was removed, or changed roles or password since
    /// the connection's credentials were checked; returns how many it ended.
    @discardableResult
    public func audit() async throws -> Int {
        let snapshot = entries.withLock { $0 }
        guard !snapshot.isEmpty else { return 0 }
        let names = Set(snapshot.values.compactMap(\.principal.user))
        let current = try await users.current(Array(names))
        var ended: [(Entry, String)] = []
        entries.withLock { live in
            for (id, entry) in snapshot {
                guard let name = entry.principal.user, live[id] != nil,
                    let reason = Self.reason(name, roles: entry.principal.roles, since: entry.since, current: current[name])
                else { continue }
                live[id] = nil
                ended.append((entry, reason))
            }
        }
        for (entry, reason) in ended { entry.end(reason) }
        return ended.count
    }
}

extension UserDirectory {
    /// The roles of each of `names` that exists, and when it last changed (the store's wall clock, ms).
    func current(_ names: [String]) async throws -> [String: (roles: [String], updated: Int64)] {
        try await store.read(database: Self.database) { db in
            var found: [String: (roles: [String], updated: Int64)] = [:]
            // SQLite's default limit on parameters is far above this, and a chunk keeps each statement small.
            for start in stride(from: 0, to: names.count, by: 500) {
                let chunk = Array(names[start..<min(start + 500, names.count)])
                let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
                for row in try Row.fetchAll(
                    db, sql: "SELECT name, roles, updated FROM _microlith_users WHERE name IN (\(marks))", arguments: StatementArguments(chunk))
                {
                    found[row["name"]] = (Self.roles(row["roles"]), row["updated"])
                }
            }
            return found
        }
    }
}
