import Foundation
import Testing

@testable import MicrolithStore

@Suite("Store: UUID keys, time-ordered and random")
struct RecordKeyUUIDTests {
    @Test func aRandomKeyIsAVersion4UUIDInLowercase() throws {
        for _ in 0..<1_000 {
            let text = RecordKey.randomUUIDText()
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

    @Test func everyRandomBitOfARandomKeyVaries() {
        // 2,000 keys: each of the 122 random bits must have been seen both ways (a stuck bit, or
        // a word formatted twice, fails); the six fixed bits never vary.
        var seenOne = [Bool](repeating: false, count: 128)
        var seenZero = [Bool](repeating: false, count: 128)
        var keys = Set<String>()
        for _ in 0..<2_000 {
            let text = RecordKey.randomUUIDText()
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
        #expect(RecordKey.uuid().description.utf8.count == 36)
        #expect(RecordKey.randomUUID().description.utf8.count == 36)
    }

    @Test func aNewKeyIsAVersion7UUIDStampedWithNow() throws {
        let before = UInt64(Date().timeIntervalSince1970 * 1000)
        let text = RecordKey.uuidText()
        let after = UInt64(Date().timeIntervalSince1970 * 1000)
        #expect(text.utf8.count == 36 && text == text.lowercased())
        let parsed = try #require(UUID(uuidString: text), "\(text) is not a UUID")
        let bytes = parsed.uuid
        #expect(bytes.6 >> 4 == 7, "version 7: \(text)")
        #expect(bytes.8 >> 6 == 0b10, "RFC 9562 variant: \(text)")
        let milliseconds = try #require(UInt64(text.filter { $0 != "-" }.prefix(12), radix: 16))
        // Keys made earlier in this process may have carried the counter a few milliseconds ahead.
        #expect(milliseconds >= before && milliseconds <= after + 50, "\(milliseconds) not within [\(before), \(after)]")
    }

    @Test func keysSortInTheOrderTheyWereMadeAndKeepTheirRandomHalf() {
        // 20,000 keys, far more than a millisecond's counter: each sorts after the one before (as
        // text and as SQLite compares them, byte by byte), and each of the 62 random bits of the
        // second half is seen both ways.
        var previous = ""
        var seenOne = [Bool](repeating: false, count: 64)
        var seenZero = [Bool](repeating: false, count: 64)
        for n in 0..<20_000 {
            let text = RecordKey.uuidText()
            if n > 0, !(Array(previous.utf8).lexicographicallyPrecedes(Array(text.utf8))) {
                Issue.record("\(text) does not sort after \(previous)")
                return
            }
            previous = text
            let low = UInt64(text.filter { $0 != "-" }.suffix(16), radix: 16)!
            #expect(low >> 62 == 0b10)
            for bit in 0..<62 {
                if low >> UInt64(bit) & 1 == 1 { seenOne[bit] = true } else { seenZero[bit] = true }
            }
        }
        for bit in 0..<62 { #expect(seenOne[bit] && seenZero[bit], "random bit \(bit) never varied") }
    }

    @Test func theTimeOrderNeverGoesBack() {
        let order = TimeOrder()
        let first = order.next(now: 2_000_000_000_000)
        #expect(first >> 12 >= 2_000_000_000_000)
        // The same millisecond, then a clock that stepped back: still one more each time.
        #expect(order.next(now: 2_000_000_000_000) == first + 1)
        #expect(order.next(now: 1_000_000_000_000) == first + 2)
        // A later millisecond starts its counter afresh.
        #expect(order.next(now: 2_000_000_000_100) == max(first + 3, 2_000_000_000_100 << 12))
    }
}
