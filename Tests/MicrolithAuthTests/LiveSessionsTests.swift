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
}
