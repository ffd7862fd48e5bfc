import Foundation
import MicrolithAuth
import MicrolithStore
import MicrolithTables
import Synchronization
import Testing

/// A clock the test moves, in Unix seconds.
private final class TestClock: Sendable {
    private let seconds = Mutex<Int64>(1_800_000_000)
    var now: Int64 { seconds.withLock { $0 } }
    func advance(_ by: Int64) { seconds.withLock { $0 += by } }
}

@Suite struct TokenIssuerTests {
    let ada = Principal(user: "ada", roles: ["editor"])

    @Test func anAccessTokenNamesTheUserAndRolesUntilItExpires() async throws {
        try await withUsers { users in
            let clock = TestClock()
            let issuer = TokenIssuer(store: users.store, configuration: .init(accessTokenSeconds: 60), now: { clock.now })
            let tokens = try await issuer.issue(for: ada)
            #expect(tokens.expiresIn == 60)
            #expect(tokens.accessToken.split(separator: ".").count == 3, "a JWS in compact form")
            let checked = try await issuer.verify(tokens.accessToken).get()
            #expect(checked.principal == ada)
            #expect(checked.expires == clock.now + 60)
            #expect(checked.issued == clock.now)

            // Tampering with the payload breaks the signature.
            var parts = tokens.accessToken.split(separator: ".").map(String.init)
            parts[1] = parts[1].replacingOccurrences(of: "e", with: "f")
            guard case .failure = await issuer.verify(parts.joined(separator: ".")) else {
                Issue.record("a tampered token was accepted")
                return
            }
            guard case .failure(let garbage) = await issuer.verify("not.a.token") else {
                Issue.record("garbage was accepted")
                return
            }
            #expect(garbage.description.contains("not a valid access token"), "\(garbage)")
        }
    }

    @Test func anExpiredTokenIsRefused() async throws {
        try await withUsers { users in
            // Verification reads the system clock (the token's exp): a token valid for 10 s, issued 20 s ago.
            let issuedAgo: Int64 = 20
            let issuer = TokenIssuer(
                store: users.store, configuration: .init(accessTokenSeconds: 10), now: { Int64(Date().timeIntervalSince1970) - issuedAgo })
            let tokens = try await issuer.issue(for: ada)
            guard case .failure(let refusal) = await issuer.verify(tokens.accessToken) else {
                Issue.record("an expired token was accepted")
                return
            }
            #expect(refusal.description == "the access token has expired; refresh it or sign in again")
        }
    }

    @Test func aRefreshTokenIsGoodOnceAndCarriesTheCurrentRoles() async throws {
        try await withUsers { users in
            try await users.add("ada", password: "pw", roles: ["editor"])
            let issuer = TokenIssuer(store: users.store)
            let first = try await issuer.issue(for: ada)
            let second = try await issuer.refresh(first.refreshToken)
            #expect(second.refreshToken != first.refreshToken)
            #expect(try await issuer.verify(second.accessToken).get().principal == ada)
            await #expect(throws: TokenIssuer.Refusal.self, "spent") { try await issuer.refresh(first.refreshToken) }
            await #expect(throws: TokenIssuer.Refusal.self) { try await issuer.refresh("made-up") }

            // A role change spends the user's refresh tokens: the next sign-in carries the new roles.
            try await users.setRoles("ada", roles: ["admin"])
            await #expect(throws: TokenIssuer.Refusal.self) { try await issuer.refresh(second.refreshToken) }
            let third = try await issuer.issue(for: Principal(user: "ada", roles: ["admin"]))
            #expect(try await issuer.revoke(third.refreshToken))
            await #expect(throws: TokenIssuer.Refusal.self, "revoked") { try await issuer.refresh(third.refreshToken) }
            let fourth = try await issuer.issue(for: ada)
            _ = try await users.remove("ada")
            await #expect(throws: TokenIssuer.Refusal.self, "the user is gone") { try await issuer.refresh(fourth.refreshToken) }
        }
    }

    @Test func aChangeWhileSigningInRefusesThePair() async throws {
        try await withUsers { users in
            try await users.add("ada", password: "pw", roles: ["editor"])
            let issuer = TokenIssuer(store: users.store)
            // Credentials checked from here on; nothing changed since: the pair is issued.
            var since = issuer.wallClock()
            try await Task.sleep(for: .milliseconds(5))
            _ = try await issuer.issue(for: ada, unchangedSince: since)
            // A password change that commits after the check began (while the hash ran, say) refuses it.
            since = issuer.wallClock()
            try await Task.sleep(for: .milliseconds(5))
            try await users.setPassword("ada", password: "new-pw")
            let refusal = await #expect(throws: TokenIssuer.Refusal.self) { try await issuer.issue(for: ada, unchangedSince: since) }
            #expect(refusal?.description == "ada's password or roles changed while signing in; sign in again")
            // So does a user removed meanwhile.
            since = issuer.wallClock()
            _ = try await users.remove("ada")
            await #expect(throws: TokenIssuer.Refusal.self) { try await issuer.issue(for: ada, unchangedSince: since) }
        }
    }

    @Test func anExpiredRefreshTokenIsRefused() async throws {
        try await withUsers { users in
            try await users.add("ada", password: "pw", roles: ["editor"])
            let clock = TestClock()
            let issuer = TokenIssuer(store: users.store, configuration: .init(refreshTokenSeconds: 100), now: { clock.now })
            let tokens = try await issuer.issue(for: ada)
            clock.advance(101)
            await #expect(throws: TokenIssuer.Refusal.self) { try await issuer.refresh(tokens.refreshToken) }
        }
    }

    @Test func keysRotateAndOldTokensVerifyUntilTheirKeyIsRetired() async throws {
        try await withUsers { users in
            let clock = TestClock()
            let issuer = TokenIssuer(
                store: users.store, configuration: .init(accessTokenSeconds: 3_600, keyRotationSeconds: 86_400), now: { clock.now })
            let old = try await issuer.issue(for: ada)
            #expect(try await issuer.keys().count == 1)
            // A day later the key is replaced; a token of the old key still verifies.
            clock.advance(86_400)
            let new = try await issuer.issue(for: ada)
            let keys = try await issuer.keys()
            #expect(keys.count == 2)
            #expect(try await issuer.verify(new.accessToken).get().principal == ada)
            #expect(try await issuer.verify(old.accessToken).get().principal == ada)
            // Revoking the others invalidates every token issued so far.
            try await issuer.rotateKey(revokingOthers: true)
            #expect(try await issuer.keys().count == 1)
            guard case .failure(let refusal) = await issuer.verify(new.accessToken) else {
                Issue.record("a token of a revoked key was accepted")
                return
            }
            #expect(refusal.description.contains("no longer valid"), "\(refusal)")
        }
    }

    @Test func aReplacedKeyStopsVerifyingOnceItsTokensHaveExpired() async throws {
        try await withUsers { users in
            let clock = TestClock()
            let configuration = TokenIssuer.Configuration(accessTokenSeconds: 60)
            let issuer = TokenIssuer(store: users.store, configuration: configuration, now: { clock.now })
            let old = try await issuer.issue(for: ada)
            try await issuer.rotateKey()
            #expect(try await issuer.verify(old.accessToken).get().principal == ada, "replaced a moment ago: still verifies")
            clock.advance(122)  // a token's life and the reload minute
            // A server loading the keys now (as every server does each minute) no longer trusts the old one.
            let later = TokenIssuer(store: users.store, configuration: configuration, now: { clock.now })
            guard case .failure(let refusal) = await later.verify(old.accessToken) else {
                Issue.record("a retired key still verified")
                return
            }
            #expect(refusal.description.contains("no longer valid"))
            try await later.rotateKey()
            #expect(try await later.keys().count == 2, "the retired key is deleted at the next rotation")
        }
    }

    @Test func aKeyRotatedByAnotherIssuerIsPickedUp() async throws {
        try await withUsers { users in
            // Two issuers on one store stand for the server and the command line.
            let server = TokenIssuer(store: users.store)
            let cli = TokenIssuer(store: users.store)
            try await cli.rotateKey()
            let token = try await cli.issue(for: ada)
            #expect(try await server.verify(token.accessToken).get().principal == ada)
        }
    }

    @Test func theAuthenticatorAcceptsBearerTokens() async throws {
        try await withUsers { users in
            let issuer = TokenIssuer(store: users.store)
            let authenticator = Authenticator(users: users, tokens: issuer)
            let tokens = try await issuer.issue(for: ada)
            #expect(try await authenticator.authenticate("Bearer \(tokens.accessToken)", address: nil).get().principal == ada)
            #expect(try await authenticator.authenticate("bearer \(tokens.accessToken)", address: nil).get().principal == ada, "again, remembered")
            guard case .failure(let refusal) = await authenticator.authenticate("Bearer x.y.z", address: nil) else {
                Issue.record("a bad token was accepted")
                return
            }
            #expect(refusal.status == 401)
            let basicOnly = Authenticator(users: users)
            guard case .failure(let no) = await basicOnly.authenticate("Bearer \(tokens.accessToken)", address: nil) else {
                Issue.record("accepted without an issuer")
                return
            }
            #expect(no.message.contains("not accepted here"))
        }
    }
}
