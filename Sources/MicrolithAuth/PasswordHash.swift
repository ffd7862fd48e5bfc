import Crypto
import Foundation
import _CryptoExtras

/// Passwords kept as PBKDF2-HMAC-SHA256 hashes with a random salt, in one self-describing text:
/// `pbkdf2-sha256$<iterations>$<salt, base64>$<hash, base64>`. A hash carries its own cost, so
/// raising ``defaultIterations`` later leaves stored passwords valid.
public enum PasswordHash {
    /// The cost of a new hash: 600,000 iterations of HMAC-SHA256 (OWASP's figure for PBKDF2-SHA256).
    public static let defaultIterations = 600_000
    /// The fewest iterations a stored hash may name; fewer is refused as a weak or forged entry.
    static let minimumIterations = 1_000
    private static let prefix = "pbkdf2-sha256"

    /// The stored form of `password`: a new 16-byte salt, `iterations` rounds, a 32-byte hash.
    public static func make(_ password: String, iterations: Int = defaultIterations) throws -> String {
        var salt = [UInt8](repeating: 0, count: 16)
        var generator = SystemRandomNumberGenerator()
        for i in salt.indices { salt[i] = UInt8.random(in: 0...255, using: &generator) }
        let hash = try derive(password, salt: salt, iterations: iterations)
        return "\(prefix)$\(iterations)$\(Data(salt).base64EncodedString())$\(Data(hash).base64EncodedString())"
    }

    /// Whether `password` is the one `stored` was made from; `false` for a stored text that is not
    /// a hash of this form.
    public static func verify(_ password: String, against stored: String) -> Bool {
        let parts = stored.split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == prefix, let iterations = Int(parts[1]), iterations >= minimumIterations,
            let salt = Data(base64Encoded: String(parts[2])), let expected = Data(base64Encoded: String(parts[3])), expected.count == 32,
            let hash = try? derive(password, salt: Array(salt), iterations: iterations)
        else { return false }
        // Compared in full whatever differs first, so the time taken tells nothing.
        var difference: UInt8 = 0
        for (a, b) in zip(hash, expected) { difference |= a ^ b }
        return difference == 0
    }

    private static func derive(_ password: String, salt: [UInt8], iterations: Int) throws -> [UInt8] {
        let key = try KDF.Insecure.PBKDF2.deriveKey(
            from: Array(password.utf8), salt: salt, using: .sha256, outputByteCount: 32, unsafeUncheckedRounds: iterations)
        return key.withUnsafeBytes { Array($0) }
    }
}
