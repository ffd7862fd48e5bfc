import Foundation
import MicrolithAuth
import MicrolithTables
import Synchronization
import Testing

/// Connections registered with ``LiveSessions`` end when an audit finds their user changed.
@Suite struct LiveSessionsTests {
    @Test func anAuditEndsWhatAChangeToItsUserConcerns() async throws {
        try await withUsers { users in
            try await users.add("ada", password: "pw-ada", roles: ["editor"])
            try await users.add("bob", password: "pw-bob", roles: ["editor"])
            let sessions = Authenticator(users: users).sessions
            let ended = Mutex<[String]>([])
            func register(_ principal: Principal, as name: String) -> LiveSessions.Ticket? {
                sessions.register(principal) { reason in ended.withLock { $0.append("\(name): \(reason)") } }
            }
            #expect(register(.anonymous, as: "anonymous") == nil, "the anonymous role has no user to change")
            _ = register(Principal(user: "ada", roles: ["editor"]), as: "ada-1")
            let closed = register(Principal(user: "ada", roles: ["editor"]), as: "ada-2")
            _ = register(Principal(user: "bob", roles: ["editor"]), as: "bob")
            #expect(try await sessions.audit() == 0)

            // A connection that closed is forgotten: no end for it.
            sessions.unregister(closed)
            try await Task.sleep(for: .milliseconds(2))
            try await users.setRoles("ada", roles: ["viewer"])
            #expect(try await sessions.audit() == 1)
            #expect(ended.withLock { $0 } == ["ada-1: ada's roles changed; sign in again"])
            #expect(try await sessions.audit() == 0, "ended once")

            // A new sign-in with the new roles stays until the next change: a password, then a removal.
            _ = register(Principal(user: "ada", roles: ["viewer"]), as: "ada-3")
            try await Task.sleep(for: .milliseconds(2))
            try await users.setPassword("ada", password: "pw-ada-2")
            _ = try await users.remove("bob")
            #expect(try await sessions.audit() == 2)
            #expect(
                Set(ended.withLock { $0 }.dropFirst())
                    == ["ada-3: ada's password changed; sign in again", "bob: the user bob was removed"])
            #expect(sessions.count == 0)
        }
    }

    /// Credentials the authenticator still remembers, or an access token, may predate a change made
    /// by another process: what they open registers with when they were checked, not when they
    /// were used, so the next audit ends it.
    @Test func rememberedCredentialsAndOlderTokensAreEndedByAnEarlierChange() async throws {
        try await withUsers { users in
            try await users.add("ada", password: "pw-ada", roles: ["editor"])
            let issuer = TokenIssuer(store: users.store)
            let authenticator = Authenticator(users: users, tokens: issuer)
            let sessions = authenticator.sessions
            let ended = Mutex<[String]>([])
            let basic = "Basic " + Data("ada:pw-ada".utf8).base64EncodedString()
            let first = try await authenticator.authenticate(basic, address: nil).get()
            let token = try await issuer.issue(for: first.principal)
            try await Task.sleep(for: .milliseconds(2))
            let beforeChange = sessions.clock()
            // Another process changes the password: this one's cache does not hear of it.
            try await users.setPassword("ada", password: "pw-ada-2")

            let remembered = try await authenticator.authenticate(basic, address: nil).get()
            #expect(remembered == first, "still remembered, with the time of the first check")
            let bearer = try await authenticator.authenticate("Bearer \(token.accessToken)", address: nil).get()
            #expect(bearer.checked <= beforeChange, "a token counts from when it was issued")
            for (name, verified) in [("basic", remembered), ("bearer", bearer)] {
                _ = sessions.register(verified.principal, since: verified.checked) { reason in ended.withLock { $0.append("\(name): \(reason)") } }
            }
            #expect(try await sessions.audit() == 2)
            #expect(
                Set(ended.withLock { $0 })
                    == ["basic: ada's password changed; sign in again", "bearer: ada's password changed; sign in again"])
        }
    }

    /// A connection counts from the version of the user its password was checked against, not from
    /// a clock: a change within the same millisecond as the check (here, with the clock stopped)
    /// still raises the version, and still ends the connection.
    @Test func aChangeInTheSameMillisecondAsTheCheckStillEndsTheConnection() async throws {
        try await withUsers(wallClock: { 1_800_000_000_000 }) { users in
            try await users.add("ada", password: "pw-ada", roles: ["editor"])
            let authenticator = Authenticator(users: users)
            let verified = try await authenticator.authenticate(basic("ada", "pw-ada"), address: nil).get()
            #expect(verified.checked == 1_800_000_000_000)
            let ended = Mutex<[String]>([])
            _ = authenticator.sessions.register(verified.principal, since: verified.checked) { reason in ended.withLock { $0.append(reason) } }
            try await users.setPassword("ada", password: "pw-ada-2")
            #expect(try await authenticator.sessions.audit() == 1)
            #expect(ended.withLock { $0 } == ["ada's password changed; sign in again"])
        }
    }

    /// What a door asks before it opens a connection: credentials checked against a version of the
    /// user that is no longer current open nothing.
    @Test func outdatedCredentialsAreNamedBeforeAConnectionOpens() async throws {
        try await withUsers { users in
            try await users.add("ada", password: "pw-ada", roles: ["editor"])
            let authenticator = Authenticator(users: users)
            let sessions = authenticator.sessions
            let verified = try await authenticator.authenticate(basic("ada", "pw-ada"), address: nil).get()
            #expect(try await sessions.outdated(verified.principal, since: verified.checked) == nil)
            #expect(try await sessions.outdated(.anonymous, since: 0) == nil, "the anonymous role has no user to change")

            try await users.setPassword("ada", password: "pw-ada-2")
            #expect(try await sessions.outdated(verified.principal, since: verified.checked) == "ada's password changed; sign in again")
            try await users.setRoles("ada", roles: ["viewer"])
            #expect(try await sessions.outdated(verified.principal, since: verified.checked) == "ada's roles changed; sign in again")
            _ = try await users.remove("ada")
            #expect(try await sessions.outdated(verified.principal, since: verified.checked) == "the user ada was removed")
        }
    }
}
