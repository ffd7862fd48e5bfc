import Crypto
import Foundation
public import MicrolithTables
import Synchronization

/// Turns a request's `Authorization` header into a ``Principal``: HTTP Basic against the
/// ``UserDirectory``, or a bearer access token of the ``TokenIssuer``; verified once and then
/// remembered for ``cacheSeconds`` (the password hash is slow by design, a hot authenticated request
/// must not be), a token no longer than it is valid, with failed sign-ins limited per user and per
/// address.
public final class Authenticator: Sendable {
    /// Why a request's credentials are refused.
    public struct Refusal: Error, Sendable, Equatable {
        /// 401 (bad or unreadable credentials) or 429 (too many failures).
        public var status: Int
        public var message: String
        /// Seconds before trying again, for a 429.
        public var retryAfter: Int?
    }

    public let users: UserDirectory
    /// The issuer of the bearer tokens accepted; `nil`: only Basic credentials are.
    public let tokens: TokenIssuer?
    /// How long verified credentials are remembered: a password changed or a user removed by another
    /// process takes effect within it (in this process, at once).
    public let cacheSeconds: Int
    /// Failed sign-ins allowed per user name, and per client address, within ``failureWindowSeconds``.
    public let failuresPerUser: Int
    public let failuresPerAddress: Int
    public let failureWindowSeconds: Int
    static let cacheLimit = 10_000

    private struct Remembered {
        var principal: Principal
        var until: ContinuousClock.Instant
    }
    private struct Failures {
        var count: Int
        var since: ContinuousClock.Instant
    }
    private let verified = Mutex<[SHA256.Digest: Remembered]>([:])
    private let failures = Mutex<[String: Failures]>([:])

    public init(
        users: UserDirectory, tokens: TokenIssuer? = nil, cacheSeconds: Int = 60, failuresPerUser: Int = 5, failuresPerAddress: Int = 20,
        failureWindowSeconds: Int = 60
    ) {
        self.users = users
        self.tokens = tokens
        self.cacheSeconds = cacheSeconds
        self.failuresPerUser = failuresPerUser
        self.failuresPerAddress = failuresPerAddress
        self.failureWindowSeconds = failureWindowSeconds
    }

    /// The principal an `Authorization` header value stands for, from `address`.
    public func authenticate(_ header: String, address: String?) async -> Result<Principal, Refusal> {
        let now = ContinuousClock.now
        let key = Self.digest(header)
        if let hit = verified.withLock({ $0[key] }), hit.until > now { return .success(hit.principal) }
        if let token = Self.bearer(header) {
            guard let tokens else { return .failure(Refusal(status: 401, message: "bearer tokens are not accepted here; use HTTP Basic")) }
            switch await tokens.verify(token) {
            case .success(let (principal, expires)):
                // Remembered no longer than the token is valid.
                let left = expires - Int64(Date().timeIntervalSince1970)
                guard left > 0 else { return .failure(Refusal(status: 401, message: "the access token has expired; refresh it or sign in again")) }
                remember(key, principal, now: now, for: .seconds(min(Int64(cacheSeconds), left)))
                return .success(principal)
            case .failure(let refusal):
                return .failure(Refusal(status: 401, message: refusal.description))
            }
        }
        guard let (name, password) = Self.basic(header) else {
            return .failure(
                Refusal(
                    status: 401,
                    message:
                        "the Authorization header must be Basic credentials ('Basic ' and base64 of user:password) or 'Bearer ' and an access token"
                ))
        }
        return await verify(name, password: password, address: address, key: key, now: now)
    }

    /// The principal a user name and password stand for, from `address`: the MQTT CONNECT's
    /// credentials, a login form. The same users, cache and limits as ``authenticate(_:address:)``;
    /// `fresh` checks the password against the store even when it was verified lately (issuing
    /// tokens must not outlive a password change by the cache's minute).
    public func signIn(_ name: String, password: String, address: String?, fresh: Bool = false) async -> Result<Principal, Refusal> {
        let now = ContinuousClock.now
        let key = Self.digest("\u{0}signin\u{0}\(name)\u{0}\(password)")
        if !fresh, let hit = verified.withLock({ $0[key] }), hit.until > now { return .success(hit.principal) }
        guard !name.isEmpty else { return .failure(Refusal(status: 401, message: "the user name is empty")) }
        return await verify(name, password: password, address: address, key: key, now: now)
    }

    /// Checks `password` against the directory unless `name` or `address` failed too often lately;
    /// remembers a success under `key`.
    private func verify(
        _ name: String, password: String, address: String?, key: SHA256.Digest, now: ContinuousClock.Instant
    ) async -> Result<
        Principal, Refusal
    > {
        let keys = ["user:\(name)"] + (address.map { ["address:\($0)"] } ?? [])
        if let wait = blocked(keys, now: now) {
            return .failure(Refusal(status: 429, message: "too many failed sign-ins; try again in \(wait) s", retryAfter: wait))
        }
        // Counted as a failure from the start, forgiven on success: attempts in flight at once count
        // against the limits too, so a burst cannot queue more hashes than the limits allow.
        failed(keys, now: now)
        let principal: Principal?
        do {
            principal = try await users.verify(name, password: password)
        } catch {
            return .failure(Refusal(status: 401, message: "the credentials could not be checked"))
        }
        guard let principal else {
            return .failure(Refusal(status: 401, message: "the user name or password is wrong"))
        }
        forgive(keys)
        remember(key, principal, now: now)
        return .success(principal)
    }

    /// Forgets what was verified for `user` (after a password change or removal in this process).
    public func forget(user: String) {
        verified.withLock { $0 = $0.filter { $0.value.principal.user != user } }
    }

    private func remember(_ key: SHA256.Digest, _ principal: Principal, now: ContinuousClock.Instant, for lifetime: Duration? = nil) {
        verified.withLock { cache in
            if cache.count >= Self.cacheLimit {
                cache = cache.filter { $0.value.until > now }
                // Still full: the entries closest to expiring go, a tenth of them.
                if cache.count >= Self.cacheLimit {
                    for (k, _) in cache.sorted(by: { $0.value.until < $1.value.until }).prefix(Self.cacheLimit / 10) { cache[k] = nil }
                }
            }
            cache[key] = Remembered(principal: principal, until: now + (lifetime ?? .seconds(cacheSeconds)))
        }
    }

    /// Seconds until `keys` may try again, when one of them has failed too often.
    private func blocked(_ keys: [String], now: ContinuousClock.Instant) -> Int? {
        let window = Duration.seconds(failureWindowSeconds)
        return failures.withLock { table in
            var wait: Duration?
            for key in keys {
                guard let f = table[key], now - f.since < window else { continue }
                let limit = key.hasPrefix("user:") ? failuresPerUser : failuresPerAddress
                if f.count >= limit { wait = max(wait ?? .zero, window - (now - f.since)) }
            }
            return wait.map { max(1, Int($0.components.seconds) + 1) }
        }
    }

    /// Takes back one failure of each of `keys` (an attempt that succeeded).
    private func forgive(_ keys: [String]) {
        failures.withLock { table in
            for key in keys {
                guard var f = table[key] else { continue }
                f.count -= 1
                table[key] = f.count > 0 ? f : nil
            }
        }
    }

    private func failed(_ keys: [String], now: ContinuousClock.Instant) {
        let window = Duration.seconds(failureWindowSeconds)
        failures.withLock { table in
            if table.count > Self.cacheLimit { table = table.filter { now - $0.value.since < window } }
            for key in keys {
                if var f = table[key], now - f.since < window {
                    f.count += 1
                    table[key] = f
                } else {
                    table[key] = Failures(count: 1, since: now)
                }
            }
        }
    }

    /// The token of `Bearer <token>` (RFC 6750), when the header is one.
    public static func bearer(_ header: String) -> String? {
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }

    /// The user name and password of `Basic <base64(user:password)>`.
    public static func basic(_ header: String) -> (String, String)? {
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "basic",
            let data = Data(base64Encoded: String(parts[1]).trimmingCharacters(in: .whitespaces)),
            let text = String(data: data, encoding: .utf8), let colon = text.firstIndex(of: ":")
        else { return nil }
        let name = String(text[..<colon])
        guard !name.isEmpty else { return nil }
        return (name, String(text[text.index(after: colon)...]))
    }

    /// The cache key of a header: its SHA-256, so no password is held in memory longer than a request.
    static func digest(_ header: String) -> SHA256.Digest {
        var header = header
        return header.withUTF8 { SHA256.hash(data: $0) }
    }
}
