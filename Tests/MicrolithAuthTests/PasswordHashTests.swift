import Foundation
import MicrolithAuth
import MicrolithSchema
import MicrolithStore
import MicrolithTables
import Testing

@Suite struct PasswordHashTests {
    @Test func aHashVerifiesItsPasswordOnly() throws {
        let stored = try PasswordHash.make("correct horse", iterations: 2_000)
        let parts = stored.split(separator: "$")
        #expect(parts.count == 4 && parts[0] == "pbkdf2-sha256" && parts[1] == "2000")
        #expect(Data(base64Encoded: String(parts[2]))?.count == 16, "a 16-byte salt")
        #expect(Data(base64Encoded: String(parts[3]))?.count == 32, "a 32-byte hash")
        #expect(PasswordHash.verify("correct horse", against: stored))
        #expect(!PasswordHash.verify("correct horsE", against: stored))
        #expect(!PasswordHash.verify("", against: stored))
        #expect(try PasswordHash.make("correct horse", iterations: 2_000) != stored, "a new salt every time")
        #expect(PasswordHash.defaultIterations >= 600_000)
    }

    @Test func aMalformedOrWeakStoredHashVerifiesNothing() throws {
        let stored = try PasswordHash.make("pw", iterations: 2_000)
        let parts = stored.split(separator: "$").map(String.init)
        for bad in [
            "", "pw", "pbkdf2-sha256$2000$\(parts[2])", "md5$2000$\(parts[2])$\(parts[3])", "pbkdf2-sha256$10$\(parts[2])$\(parts[3])",
            "pbkdf2-sha256$2000$\(parts[2])$AAAA", "pbkdf2-sha256$x$\(parts[2])$\(parts[3])",
        ] {
            #expect(!PasswordHash.verify("pw", against: bad), "\(bad)")
        }
    }
}
