import Foundation
import MicrolithAuth
import MicrolithSchema
import MicrolithStore
import MicrolithTables
import Testing

@Suite struct AuthenticatorTests {
    @Test func basicCredentialsNameTheUser() async throws {
        try await withUsers { users in
            try await users.add("ada", password: "pa:ss wörd", roles: ["editor"])
            let authenticator = Authenticator(users: users)
            #expect(
                try await authenticator.authenticate(basic("ada", "pa:ss wörd"), address: nil).get().principal
                    == Principal(user: "ada", roles: ["editor"]))
            for header in [
                basic("ada", "wrong"), basic("eve", "pa:ss wörd"), "Basic !!!", "Bearer abc", "Basic " + Data("nocolon".utf8).base64EncodedString(),
            ] {
                guard case .failure(let refusal) = await authenticator.authenticate(header, address: nil) else {
                    Issue.record("\(header) was accepted")
                    continue
                }
                #expect(refusal.status == 401, "\(header)")
            }
        }
    }

    @Test func verifiedCredentialsAreRememberedUntilForgotten() async throws {
        try await withUsers { users in
            try await users.add("ada", password: "pw", roles: ["editor"])
            let authenticator = Authenticator(users: users)
            _ = try await authenticator.authenticate(basic("ada", "pw"), address: nil).get()
            // Removed behind the authenticator's back: the remembered answer still holds...
            _ = try await users.remove("ada")
            #expect(try await authenticator.authenticate(basic("ada", "pw"), address: nil).get().principal.user == "ada")
            // ...until it is forgotten (as the server does after its own changes) or expires.
            authenticator.forget(user: "ada")
            await #expect(throws: Authenticator.Refusal.self) { try await authenticator.authenticate(basic("ada", "pw"), address: nil).get() }
        }
    }

    @Test func failedSignInsAreLimitedPerUserAndAddress() async throws {
        try await withUsers { users in
            try await users.add("ada", password: "pw", roles: [])
            try await users.add("bob", password: "pw", roles: [])
            let authenticator = Authenticator(users: users, failuresPerUser: 3, failuresPerAddress: 5, failureWindowSeconds: 60)
            for _ in 0..<3 { _ = await authenticator.authenticate(basic("ada", "guess"), address: "10.0.0.1") }
            guard case .failure(let blocked) = await authenticator.authenticate(basic("ada", "pw"), address: "10.0.0.9") else {
                Issue.record("the right password got through after 3 failures")
                return
            }
            #expect(blocked.status == 429 && (blocked.retryAfter ?? 0) > 0, "even the right password waits")
            #expect(
                try await authenticator.authenticate(basic("bob", "pw"), address: "10.0.0.9").get().principal.user == "bob", "other users are not")
            for _ in 0..<2 { _ = await authenticator.authenticate(basic("bob", "guess"), address: "10.0.0.1") }
            guard case .failure(let address) = await authenticator.authenticate(basic("carol", "x"), address: "10.0.0.1") else { return }
            #expect(address.status == 429, "5 failures from one address block it for every name")
        }
    }
}
