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

    /// A principal, and when its credentials were checked.
    public struct Verified: Sendable, Equatable {
        public var principal: Principal
        /// The version of the user the credentials were checked against: the user's `updated` stamp
        /// (ms of the store's wall clock, raised by every change) as the password check read it, or
        /// as the access token was issued with (for a token without one, its issue time, rounded
        /// down to the second). A change to the user after it ends what these credentials open
        /// (``LiveSessions``), even when they came from the cache.
        public var checked: Int64

        public init(principal: Principal, checked: Int64) {
            self.principal = principal
            self.checked = checked
        }
    }

    public let users: UserDirectory
    /// The long-lived connections signed in as users, ended when their user changes.
    public let sessions: LiveSessions
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
        var verified: Verified
        var until: ContinuousClock.Instant
    }
    private struct Failures {
        var count: Int
        var since: ContinuousClock.Instant
    }
    private let verified = Mutex<[SHA256.Digest: Remembered]>([:])
    /// How many times a user was forgotten: a check that overlapped one does not remember its result.
    private let forgotten = Atomic<Int>(0)
    /// Failures within the window and checks running, per `user:` and `address:` key.
    private struct Limits {
        var failures: [String: Failures] = [:]
        var running: [String: Int] = [:]
    }
    private let limits = Mutex(Limits())
    /// Those waiting for a check of the same credentials already running, by their cache key.
    private let pending = Mutex<[SHA256.Digest: [CheckedContinuation<Result<Verified, Refusal>?, Never>]]>([:])

    public init(
        users: UserDirectory, tokens: TokenIssuer? = nil, cacheSeconds: Int = 60, failuresPerUser: Int = 5, failuresPerAddress: Int = 20,
        failureWindowSeconds: Int = 60
    ) {
        self.users = users
        self.sessions = LiveSessions(users: users)
        self.tokens = tokens
        self.cacheSeconds = cacheSeconds
        self.failuresPerUser = failuresPerUser
        self.failuresPerAddress = failuresPerAddress
        self.failureWindowSeconds = failureWindowSeconds
    }

    /// The principal an `Authorization` header value stands for, from `address`.
    public func authenticate(_ header: String, address: String?) async -> Result<Verified, Refusal> {
        let now = ContinuousClock.now
        let key = Self.digest(header)
        if let hit = verified.withLock({ $0[key] }), hit.until > now { return .success(hit.verified) }
        if let token = Self.bearer(header) {
            guard let tokens else { return .failure(Refusal(status: 401, message: "bearer tokens are not accepted here; use HTTP Basic")) }
            switch await tokens.verify(token) {
            case .success(let verified):
                // Remembered no longer than the token is valid.
                let left = verified.expires - Int64(Date().timeIntervalSince1970)
                guard left > 0 else { return .failure(Refusal(status: 401, message: "the access token has expired; refresh it or sign in again")) }
                // Never later than now: the issuer's clock may not be the store's.
                let checked = verified.userVersion ?? min(verified.issued * 1000, sessions.clock())
                let result = Verified(principal: verified.principal, checked: checked)
                remember(key, result, now: now, for: .seconds(min(Int64(cacheSeconds), left)))
                return .success(result)
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
    public func signIn(_ name: String, password: String, address: String?, fresh: Bool = false) async -> Result<Verified, Refusal> {
        let now = ContinuousClock.now
        let key = Self.digest("\u{0}signin\u{0}\(name)\u{0}\(password)")
        if !fresh, let hit = verified.withLock({ $0[key] }), hit.until > now { return .success(hit.verified) }
        guard !name.isEmpty else { return .failure(Refusal(status: 401, message: "the user name is empty")) }
        // A fresh check does not join one already running: that one may have read the user before a change.
        return await verify(name, password: password, address: address, key: key, now: now, coalesce: !fresh)
    }

    /// Checks `password` against the directory unless `name` or `address` failed too often lately;
    /// remembers a success under `key` (unless a user was forgotten meanwhile: the check may have
    /// read them before their change). With `coalesce`, a check of the same credentials already
    /// running answers this one too.
    private func verify(
        _ name: String, password: String, address: String?, key: SHA256.Digest, now: ContinuousClock.Instant, coalesce: Bool = true
    ) async
        -> Result<Verified, Refusal>
    {
        let generation = forgotten.load(ordering: .acquiring)
        func checkAndRemember() async -> Result<Verified, Refusal> {
            let result = await check(name, password: password, address: address, now: now)
            if case .success(let verified) = result, forgotten.load(ordering: .acquiring) == generation { remember(key, verified, now: now) }
            return result
        }
        guard coalesce else { return await checkAndRemember() }
        // The same credentials arriving together (a fleet of clients reconnecting) are hashed once.
        let joined: Result<Verified, Refusal>? = await withCheckedContinuation { continuation in
            let first = pending.withLock { waiting -> Bool in
                if waiting[key] != nil {
                    waiting[key]!.append(continuation)
                    return false
                }
                waiting[key] = []
                return true
            }
            if first { continuation.resume(returning: nil) }
        }
        if let joined { return joined }
        let result = await checkAndRemember()
        for waiter in pending.withLock({ $0.removeValue(forKey: key) ?? [] }) { waiter.resume(returning: result) }
        return result
    }

    /// Checks `password` unless `name` or `address` failed too often lately or has too many checks
    /// running (each costs the hash: a burst must not queue more of them than the limits allow).
    private func check(_ name: String, password: String, address: String?, now: ContinuousClock.Instant) async -> Result<Verified, Refusal> {
        let keys = ["user:\(name)"] + (address.map { ["address:\($0)"] } ?? [])
        if let wait = begin(keys, now: now) {
            return .failure(Refusal(status: 429, message: "too many failed sign-ins; try again in \(wait) s", retryAfter: wait))
        }
        let found: (principal: Principal, version: Int64)?
        do {
            found = try await users.versionedVerify(name, password: password)
        } catch {
            end(keys, failed: false, now: now)
            return .failure(Refusal(status: 401, message: "the credentials could not be checked"))
        }
        end(keys, failed: found == nil, now: now)
        guard let found else { return .failure(Refusal(status: 401, message: "the user name or password is wrong")) }
        // The version of the user the password was checked against: any later change raises it.
        return .success(Verified(principal: found.principal, checked: found.version))
    }

    /// Forgets what was verified for `user` (after a password change or removal in this process).
    public func forget(user: String) {
        forgotten.add(1, ordering: .releasing)
        verified.withLock { $0 = $0.filter { $0.value.verified.principal.user != user } }
    }

    private func remember(_ key: SHA256.Digest, _ result: Verified, now: ContinuousClock.Instant, for lifetime: Duration? = nil) {
        verified.withLock { cache in
            if cache.count >= Self.cacheLimit {
                cache = cache.filter { $0.value.until > now }
                // Still full: the entries closest to expiring go, a tenth of them.
                if cache.count >= Self.cacheLimit {
                    for (k, _) in cache.sorted(by: { $0.value.until < $1.value.until }).prefix(Self.cacheLimit / 10) { cache[k] = nil }
                }
            }
            cache[key] = Remembered(verified: result, until: now + (lifetime ?? .seconds(cacheSeconds)))
        }
    }

    /// Starts a check for `keys`: `nil` when they may try, else the seconds until they may. Checked
    /// and counted under one lock: failures within the window and checks running both count.
    private func begin(_ keys: [String], now: ContinuousClock.Instant) -> Int? {
        let window = Duration.seconds(failureWindowSeconds)
        return limits.withLock { state in
            var wait: Duration?
            for key in keys {
                let limit = key.hasPrefix("user:") ? failuresPerUser : failuresPerAddress
                let failures = state.failures[key].flatMap { now - $0.since < window ? $0 : nil }
                if let failures, failures.count >= limit { wait = max(wait ?? .zero, window - (now - failures.since)) }
                if (failures?.count ?? 0) + state.running[key, default: 0] >= limit { wait = max(wait ?? .zero, .seconds(1)) }
            }
            if let wait { return max(1, Int(wait.components.seconds) + (wait.components.attoseconds > 0 ? 1 : 0)) }
            for key in keys { state.running[key, default: 0] += 1 }
            return nil
        }
    }

    /// Ends a check begun by ``begin(_:now:)``, counting a failure when `failed`.
    private func end(_ keys: [String], failed: Bool, now: ContinuousClock.Instant) {
        let window = Duration.seconds(failureWindowSeconds)
        limits.withLock { state in
            for key in keys {
                let running = state.running[key, default: 1] - 1
                state.running[key] = running > 0 ? running : nil
            }
            guard failed else { return }
            if state.failures.count > Self.cacheLimit { state.failures = state.failures.filter { now - $0.value.since < window } }
            for key in keys {
                if var f = state.failures[key], now - f.since < window {
                    f.count += 1
                    state.failures[key] = f
                } else {
                    state.failures[key] = Failures(count: 1, since: now)
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
