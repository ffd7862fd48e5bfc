import Foundation
import MicrolithStore
import Testing

@Suite("Store: random UUID keys")
struct RecordKeyUUIDTests {
    @Test func aNewKeyIsAVersion4UUIDInLowercase() throws {
        for _ in 0..<1_000 {
            let text = RecordKey.uuidText()
            #expect(text.utf8.count == 36)
            #expect(text == text.lowercased())
            let parsed = try #require(UUID(uuidString: text), "\(text) is not a UUID")
            #expect(parsed.uuidString.lowercased() == text)
            let bytes = parsed.uuid
            #expect(bytes.6 >> 4 == 4, "version 4: \(text)")
            #expect(bytes.8 >> 6 == 0b10, "RFC 9562 variant: \(text)")
            let dashes = text.utf8.enumerated().filter { $0.element == UInt8(ascii: "-") }.map(\.offset)
            #expect(dashes == [8, 13, 18, 23])
        }
    }

    @Test func everyRandomBitVaries() {
        // 2,000 keys: each of the 122 random bits must have been seen both ways (a stuck bit, or
        // a word formatted twice, fails); the six fixed bits never vary.
        var seenOne = [Bool](repeating: false, count: 128)
        var seenZero = [Bool](repeating: false, count: 128)
        var keys = Set<String>()
        for _ in 0..<2_000 {
            let text = RecordKey.uuidText()
            keys.insert(text)
            let hex = text.filter { $0 != "-" }
            for (n, c) in hex.enumerated() {
                let value = Int(String(c), radix: 16)!
                for b in 0..<4 {
                    let bit = n * 4 + b
                    if value >> (3 - b) & 1 == 1 { seenOne[bit] = true } else { seenZero[bit] = true }
                }
            }
        }
        #expect(keys.count == 2_000)
        let fixed: Set<Int> = [48, 49, 50, 51, 64, 65]
        for bit in 0..<128 {
            if fixed.contains(bit) {
                #expect(seenOne[bit] != seenZero[bit], "bit \(bit) is fixed")
            } else {
                #expect(seenOne[bit] && seenZero[bit], "bit \(bit) never varied")
            }
        }
    }

    @Test func theKeyFormIsTheText() {
        let key = RecordKey.uuid()
        #expect(key.description.utf8.count == 36)
    }
}
