import Foundation
import Synchronization

extension RecordKey {
    /// A new key that sorts after the keys made before it: a version 7 UUID (RFC 9562) as lowercase
    /// text, such as `"019a7c3e-5b21-7000-8c2f-5e6d7a8b9c0d"`. What a `POST` or an `insert` without a
    /// key makes.
    ///
    /// Its 128 bits: 48 of milliseconds since 1970, 4 of version (7), 12 of a counter within the
    /// millisecond, 2 of variant, 62 random. Keys in creation order are what a B-tree takes cheapest: a
    /// new record, and its entry in every secondary index (which holds the value and the key), goes
    /// at the end of its range instead of onto a random page, so a write touches a few pages rather
    /// than one per index (`Benchmarks/writes/sqlite-floor`: about a quarter of the SQLite time of
    /// ``randomUUID()`` keys). The price: a key shows when it was made, to the millisecond. Use
    /// ``randomUUID()`` where that must not show.
    ///
    /// Within a process the keys only ever grow: one made after another sorts after it, even when
    /// many share a millisecond or the system clock steps back (the counter then carries on from
    /// the last key made).
    public static func uuid() -> RecordKey { RecordKey(uuidText()) }

    /// The text of a new ``uuid()``, for a `String` primary key attribute.
    ///
    /// ```swift
    /// try txn.insert(Tables.orders, Order(id: RecordKey.uuidText(), lines: lines))
    /// ```
    public static func uuidText() -> String {
        var generator = SystemRandomNumberGenerator()
        // Milliseconds in the top 48 bits, then version 7, then the 12-bit counter.
        let stamp = TimeOrder.shared.next()
        let high = (stamp >> 12) << 16 | 0x7000 | (stamp & 0xFFF)
        let low = (generator.next() & ~0xC000_0000_0000_0000) | 0x8000_0000_0000_0000
        return text(high: high, low: low)
    }

    /// A new key with nothing but chance in it: a version 4 UUID (RFC 9562) as lowercase text,
    /// such as `"3f0c8a52-9d1e-4b7a-8c2f-5e6d7a8b9c0d"`; it tells nothing of when it was made, and
    /// costs more to write than a ``uuid()``.
    ///
    /// The 122 random bits come from the system's generator (`getrandom` on Linux), as
    /// `SystemRandomNumberGenerator` draws them. Foundation's `UUID()` opens and reads
    /// `/dev/urandom` for each one on Linux: a few microseconds of system calls per key, and
    /// inside a write transaction they hold the database's only writer.
    public static func randomUUID() -> RecordKey { RecordKey(randomUUIDText()) }

    /// The text of a new ``randomUUID()``.
    public static func randomUUIDText() -> String {
        var generator = SystemRandomNumberGenerator()
        // Version 4 in the top four bits of byte 6; variant 0b10 in the top two bits of byte 8.
        let high = (generator.next() & ~0x0000_0000_0000_F000) | 0x0000_0000_0000_4000
        let low = (generator.next() & ~0xC000_0000_0000_0000) | 0x8000_0000_0000_0000
        return text(high: high, low: low)
    }

    /// The 8-4-4-4-12 lowercase text of a UUID's two halves.
    private static func text(high: UInt64, low: UInt64) -> String {
        String(unsafeUninitializedCapacity: 36) { buffer in
            let digits: StaticString = "0123456789abcdef"
            var written = 0
            for i in 0..<32 {
                if i == 8 || i == 12 || i == 16 || i == 20 {
                    buffer[written] = UInt8(ascii: "-")
                    written += 1
                }
                let word = i < 16 ? high : low
                buffer[written] = digits.utf8Start[Int((word >> UInt64(60 - 4 * (i % 16))) & 0xF)]
                written += 1
            }
            return written
        }
    }
}

/// The time-ordered part of version 7 keys: milliseconds since 1970 shifted left by 12, plus a
/// counter, never smaller than one given out before.
final class TimeOrder: Sendable {
    /// The process's own, which ``RecordKey/uuid()`` draws from.
    static let shared = TimeOrder()
    private let last = Atomic<UInt64>(0)

    /// The next stamp: now's milliseconds with a zero counter, or one more than the last stamp when
    /// that is not smaller (the same millisecond, a clock that stepped back, or a counter that ran
    /// past 4,095 into the next millisecond).
    func next(now: UInt64 = UInt64(max(0, Date().timeIntervalSince1970 * 1000))) -> UInt64 {
        let fresh = (now & 0xFFFF_FFFF_FFFF) << 12
        var previous = last.load(ordering: .relaxed)
        while true {
            let candidate = max(fresh, previous &+ 1)
            let (exchanged, original) = last.compareExchange(expected: previous, desired: candidate, ordering: .relaxed)
            if exchanged { return candidate }
            previous = original
        }
    }
}
