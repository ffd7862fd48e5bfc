import Crypto
import Foundation
import GRDB
import JWTKit
import MicrolithSchema
public import MicrolithStore
public import MicrolithTables
import Synchronization

/// Issues and checks bearer tokens: short-lived JWT access tokens (HS256, signed with keys kept in
/// the store and rotated) and long-lived opaque refresh tokens that are exchanged once for a new pair.
///
/// - An access token names the user and their roles, and is valid until its `exp`: a role change or
///   a removed user takes effect at the next refresh, within ``Configuration/accessTokenSeconds``.
/// - A refresh token is 32 random bytes; the store keeps only its SHA-256. Exchanging it removes it,
///   so a token is good once. Changing a user's password or roles, or removing the user, removes
///   their refresh tokens.
/// - Signing keys (`_microlith_signing_keys`) are 32 random bytes each, named by a key id (`kid`).
///   The newest signs; it is replaced after ``Configuration/keyRotationSeconds``, and the ones it
///   replaced keep verifying for one access token lifetime, then go. ``rotateKey(revokingOthers:)``
///   rotates at once (the CLI's `microlith user rotate-key`), optionally invalidating every token.
public final class TokenIssuer: Sendable {
    /// Lifetimes and rotation, in seconds (`auth.*` in `microlith.yaml`).
    public struct Configuration: Sendable, Equatable {
        /// How long an access token is valid.
        public var accessTokenSeconds: Int
        /// How long a refresh token is valid (unless exchanged or revoked first).
        public var refreshTokenSeconds: Int
        /// How old the signing key may get before a new one replaces it.
        public var keyRotationSeconds: Int

        public init(accessTokenSeconds: Int = 900, refreshTokenSeconds: Int = 30 * 86_400, keyRotationSeconds: Int = 30 * 86_400) {
            self.accessTokenSeconds = accessTokenSeconds
            self.refreshTokenSeconds = refreshTokenSeconds
            self.keyRotationSeconds = keyRotationSeconds
        }
    }

    /// A new access token and the refresh token to get the next one.
    public struct Tokens: Sendable, Equatable {
        public var accessToken: String
        public var refreshToken: String
        /// Seconds the access token is valid.
        public var expiresIn: Int
        /// Seconds the refresh token is valid.
        public var refreshExpiresIn: Int
    }

    /// Why a token is refused (HTTP 401).
    public struct Refusal: Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String
    }

    /// One signing key, as stored.
    struct SigningKey: Sendable {
        var kid: String
        var secret: [UInt8]
        /// Unix seconds.
        var created: Int64
    }

    /// The keys in memory and the collection built from them.
    private struct Ring: Sendable {
        var keys: [SigningKey] = []
        var collection = JWTKeyCollection()
        var loadedAt: ContinuousClock.Instant?
    }

    /// What an access token carries.
    struct Claims: JWTPayload {
        var iss: IssuerClaim
        var sub: SubjectClaim
        var roles: [String]
        var iat: IssuedAtClaim
        var exp: ExpirationClaim
        /// The version of the user the token was issued for (their `updated` stamp, ms): a change to
        /// the user since ends what the token opens (LiveSessions). Absent in tokens of a user with
        /// no stored row.
        var uv: Int64?

        func verify(using algorithm: some JWTAlgorithm) async throws {
            try exp.verifyNotExpired()
            guard iss.value == TokenIssuer.issuer else {
                throw JWTError.claimVerificationFailure(failedClaim: iss, reason: "not issued by \(TokenIssuer.issuer)")
            }
        }
    }

    static let issuer = "microlith"
    /// Keys are read again from the store at most this often (another process may have rotated them).
    static let reloadSeconds = 60
    private static let database = Schema.defaultDatabase

    public let store: Store
    public let configuration: Configuration
    private let clock: @Sendable () -> Int64
    private let ring = Mutex(Ring())
    /// Serializes loading and rotation, so concurrent requests make one new key, not several.
    private let loading = AsyncMutex()

    /// An issuer for the users of `store`; `now` gives Unix seconds (tests move it).
    public init(store: Store, configuration: Configuration = Configuration(), now: (@Sendable () -> Int64)? = nil) {
        self.store = store
        self.configuration = configuration
        self.clock = now ?? { Int64(Date().timeIntervalSince1970) }
    }

    // MARK: Issuing

    /// A new pair for `principal`, a signed-in user.
    ///
    /// With `unchangedSince` (the version of the user the credentials were checked against,
    /// ``Authenticator/Verified/checked``, or the store's ``wallClock()`` read before the check), the
    /// pair is refused when the user changed (password, roles) or went since then: a change that
    /// commits while a sign-in is checked cannot be outlived by its refresh token.
    public func issue(for principal: Principal, unchangedSince: Int64? = nil) async throws -> Tokens {
        guard let user = principal.user else { throw Refusal(description: "only a signed-in user gets tokens") }
        let now = clock()
        let refresh = Self.randomToken()
        let version = try await store.write(database: Self.database) { [self] txn -> Int64? in
            let updated = try Int64.fetchOne(txn.db, sql: "SELECT updated FROM _microlith_users WHERE name = ?", arguments: [user])
            if let unchangedSince {
                guard let updated, updated <= unchangedSince else {
                    throw Refusal(description: "\(user)'s password or roles changed while signing in; sign in again")
                }
            }
            try keep(refresh, of: user, now: now, in: txn)
            return updated
        }
        return try await tokens(user: user, roles: principal.roles, version: version, refresh: refresh, now: now)
    }

    /// The store's wall clock now, in milliseconds: what users' `updated` and tokens' `created` are stamped with.
    public func wallClock() -> Int64 {
        store.configuration.wallClock()
    }

    /// Stores the digest of a new refresh token of `user`, dropping expired ones. Its `created` is
    /// the store's wall clock, as a user's `updated` is: a token older than the user's last change
    /// (a password or roles) is refused.
    private func keep(_ refresh: String, of user: String, now: Int64, in txn: WriteTransaction) throws {
        let digest = Self.hex(SHA256.hash(data: Array(refresh.utf8)))
        try txn.db.execute(sql: "DELETE FROM _microlith_refresh_tokens WHERE expires <= ?", arguments: [now])
        try txn.db.execute(
            sql: "INSERT INTO _microlith_refresh_tokens(digest, user, created, expires) VALUES (?, ?, ?, ?)",
            arguments: [digest, user, txn.wallClock(), now + Int64(configuration.refreshTokenSeconds)])
    }

    private func tokens(user: String, roles: [String], version: Int64?, refresh: String, now: Int64) async throws -> Tokens {
        Tokens(
            accessToken: try await sign(user: user, roles: roles, version: version, now: now), refreshToken: refresh,
            expiresIn: configuration.accessTokenSeconds, refreshExpiresIn: configuration.refreshTokenSeconds)
    }

    /// Exchanges `refreshToken` for a new pair, with the user's current roles; the old token is spent.
    public func refresh(_ refreshToken: String) async throws -> Tokens {
        let now = clock()
        let digest = Self.hex(SHA256.hash(data: Array(refreshToken.utf8)))
        let next = Self.randomToken()
        // Spending the old token and keeping the new one is one transaction: a token is good once.
        let found = try await store.write(database: Self.database) { [self] txn -> (user: String, roles: String, version: Int64)? in
            guard
                let row = try Row.fetchOne(
                    txn.db,
                    sql: """
                        SELECT t.user AS user, t.expires AS expires, t.created AS created, u.roles AS roles, u.updated AS updated
                        FROM _microlith_refresh_tokens t LEFT JOIN _microlith_users u ON u.name = t.user WHERE t.digest = ?
                        """, arguments: [digest])
            else { return nil }
            try txn.db.execute(sql: "DELETE FROM _microlith_refresh_tokens WHERE digest = ?", arguments: [digest])
            let expires: Int64 = row["expires"]
            let created: Int64 = row["created"]
            // The user is gone, or changed (password, roles) since the token was made.
            guard expires > now, let roles: String = row["roles"], let updated: Int64 = row["updated"], created >= updated else { return nil }
            let user: String = row["user"]
            try keep(next, of: user, now: now, in: txn)
            return (user, roles, updated)
        }
        guard let found else { throw Refusal(description: "the refresh token is unknown, spent or expired; sign in again") }
        return try await tokens(
            user: found.user, roles: found.roles.split(separator: ",").map(String.init), version: found.version, refresh: next, now: now)
    }

    /// Spends `refreshToken` without a new pair (signing out); whether it was valid.
    @discardableResult
    public func revoke(_ refreshToken: String) async throws -> Bool {
        let digest = Self.hex(SHA256.hash(data: Array(refreshToken.utf8)))
        return try await store.write(database: Self.database) { txn in
            try txn.db.execute(sql: "DELETE FROM _microlith_refresh_tokens WHERE digest = ?", arguments: [digest])
            return txn.db.changesCount > 0
        }
    }

    // MARK: Verifying

    /// The principal of a valid access token, when it was issued and when it expires (Unix seconds),
    /// and the version of the user it was issued for (their `updated` stamp, when the token has one).
    public func verify(_ token: String) async -> Result<(principal: Principal, issued: Int64, expires: Int64, userVersion: Int64?), Refusal> {
        do {
            var collection = try await currentCollection(reloadingIfOlderThan: .seconds(Self.reloadSeconds))
            let claims: Claims
            do {
                claims = try await collection.verify(token, as: Claims.self)
            } catch let error as JWTError where error.errorType == .noKeyProvided || error.errorType == .unknownKID {
                // Signed with a key made since the last load (another process rotated): read them again.
                collection = try await currentCollection(reloadingIfOlderThan: .seconds(1))
                claims = try await collection.verify(token, as: Claims.self)
            }
            return .success(
                (
                    Principal(user: claims.sub.value, roles: claims.roles), Int64(claims.iat.value.timeIntervalSince1970),
                    Int64(claims.exp.value.timeIntervalSince1970), claims.uv
                ))
        } catch let error as JWTError {
            return .failure(Refusal(description: Self.describe(error)))
        } catch {
            return .failure(Refusal(description: "the token could not be checked"))
        }
    }

    // MARK: Keys

    /// Makes a new signing key at once; with `revokingOthers`, deletes every other key, which
    /// invalidates every access token issued so far (refresh tokens stay valid).
    public func rotateKey(revokingOthers: Bool = false) async throws {
        try await loading.run {
            let now = clock()
            let retireBefore = now - Int64(configuration.accessTokenSeconds + Self.reloadSeconds)
            try await store.write(database: Self.database) { txn in
                if revokingOthers { try txn.db.execute(sql: "DELETE FROM _microlith_signing_keys") }
                try Self.retire(txn.db, before: retireBefore)
                try Self.insertKey(txn.db, now: now)
            }
            try await reload()
        }
    }

    /// The signing keys' ids and creation times (Unix seconds), newest first.
    public func keys() async throws -> [(kid: String, created: Int64)] {
        try await store.read(database: Self.database) { db in
            try Row.fetchAll(db, sql: "SELECT kid, created FROM _microlith_signing_keys ORDER BY created DESC, kid").map {
                ($0["kid"], $0["created"])
            }
        }
    }

    private func sign(user: String, roles: [String], version: Int64?, now: Int64) async throws -> String {
        let (collection, kid) = try await signingKey(now: now)
        let claims = Claims(
            iss: IssuerClaim(value: Self.issuer), sub: SubjectClaim(value: user), roles: roles,
            iat: IssuedAtClaim(value: Date(timeIntervalSince1970: TimeInterval(now))),
            exp: ExpirationClaim(value: Date(timeIntervalSince1970: TimeInterval(now + Int64(configuration.accessTokenSeconds)))), uv: version)
        return try await collection.sign(claims, kid: JWKIdentifier(string: kid))
    }

    /// The collection and the key id to sign with: the newest key, made (and the expired ones
    /// dropped) when there is none younger than the rotation period.
    private func signingKey(now: Int64) async throws -> (JWTKeyCollection, String) {
        if let ready = ring.withLock({ r -> (JWTKeyCollection, String)? in
            guard let newest = r.keys.first, now - newest.created < Int64(configuration.keyRotationSeconds),
                let loaded = r.loadedAt, ContinuousClock.now - loaded < .seconds(Self.reloadSeconds)
            else { return nil }
            return (r.collection, newest.kid)
        }) {
            return ready
        }
        return try await loading.run {
            try await reload()
            if let newest = ring.withLock({ $0.keys.first }), now - newest.created < Int64(configuration.keyRotationSeconds) {
                return (ring.withLock { $0.collection }, newest.kid)
            }
            let retireBefore = now - Int64(configuration.accessTokenSeconds + Self.reloadSeconds)
            try await store.write(database: Self.database) { txn in
                try Self.retire(txn.db, before: retireBefore)
                try Self.insertKey(txn.db, now: now)
            }
            try await reload()
            guard let newest = ring.withLock({ $0.keys.first }) else { throw Refusal(description: "no signing key could be made") }
            return (ring.withLock { $0.collection }, newest.kid)
        }
    }

    private func currentCollection(reloadingIfOlderThan age: Duration) async throws -> JWTKeyCollection {
        if let fresh = ring.withLock({ r in r.loadedAt.map { ContinuousClock.now - $0 < age } == true ? r.collection : nil }) {
            return fresh
        }
        return try await loading.run {
            if let fresh = ring.withLock({ r in r.loadedAt.map { ContinuousClock.now - $0 < age } == true ? r.collection : nil }) {
                return fresh
            }
            try await reload()
            return ring.withLock { $0.collection }
        }
    }

    /// Reads the keys from the store into a new collection.
    private func reload() async throws {
        let stored = try await store.read(database: Self.database) { db in
            try Row.fetchAll(db, sql: "SELECT kid, secret, created FROM _microlith_signing_keys ORDER BY created DESC, kid DESC").map {
                SigningKey(kid: $0["kid"], secret: [UInt8]($0["secret"] as Data), created: $0["created"])
            }
        }
        // A key replaced longer ago than an access token lives signed nothing still valid: it
        // verifies nothing more (and goes from the store at the next rotation).
        let now = clock()
        // (With the reload period as a margin: a server may sign with a replaced key until it reloads.)
        let lifetime = Int64(configuration.accessTokenSeconds + Self.reloadSeconds)
        let keys = stored.enumerated().filter { i, _ in i == 0 || now - stored[i - 1].created < lifetime }.map(\.element)
        let collection = JWTKeyCollection()
        for key in keys {
            await collection.add(hmac: HMACKey(from: key.secret), digestAlgorithm: .sha256, kid: JWKIdentifier(string: key.kid))
        }
        // Tokens without a key id are refused: every token this issuer signs names its key.
        await collection.clearDefault()
        ring.withLock { $0 = Ring(keys: keys, collection: collection, loadedAt: .now) }
    }

    /// Deletes the keys replaced (by a newer key) before `before`: they verify nothing still valid.
    private static func retire(_ db: Database, before: Int64) throws {
        try db.execute(
            sql: """
                DELETE FROM _microlith_signing_keys WHERE EXISTS (
                    SELECT 1 FROM _microlith_signing_keys AS n WHERE n.created > _microlith_signing_keys.created AND n.created <= ?)
                """, arguments: [before])
    }

    private static func insertKey(_ db: Database, now: Int64) throws {
        var secret = [UInt8](repeating: 0, count: 32)
        var generator = SystemRandomNumberGenerator()
        for i in secret.indices { secret[i] = generator.next() }
        var id = [UInt8](repeating: 0, count: 8)
        for i in id.indices { id[i] = generator.next() }
        // Strictly newer than every other key, even within the same second: the newest key signs.
        try db.execute(
            sql: """
                INSERT INTO _microlith_signing_keys(kid, secret, created)
                VALUES (?, ?, MAX(?, COALESCE((SELECT MAX(created) FROM _microlith_signing_keys) + 1, 0)))
                """,
            arguments: [hex(id), Data(secret), now])
    }

    // MARK: Helpers

    /// 32 random bytes, base64url without padding.
    static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// A refusal's words for a client, without the library's internals.
    static func describe(_ error: JWTError) -> String {
        switch error.errorType {
        case .claimVerificationFailure:
            return error.reason == "expired" ? "the access token has expired; refresh it or sign in again" : "the access token's claims are not valid"
        case .unknownKID, .noKeyProvided:
            return "the access token was signed with a key that is no longer valid; sign in again"
        case .signatureVerificationFailed:
            return "the access token's signature is not valid"
        default:
            return "the bearer token is not a valid access token"
        }
    }
}

/// A lock held across suspension points: one task at a time runs the body.
final class AsyncMutex: Sendable {
    private let state = Mutex<(locked: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func run<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        await lock()
        defer { unlock() }
        return try await body()
    }

    private func lock() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let acquired = state.withLock { s -> Bool in
                if s.locked {
                    s.waiters.append(continuation)
                    return false
                }
                s.locked = true
                return true
            }
            if acquired { continuation.resume() }
        }
    }

    private func unlock() {
        let next = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if s.waiters.isEmpty {
                s.locked = false
                return nil
            }
            return s.waiters.removeFirst()
        }
        next?.resume()
    }
}
