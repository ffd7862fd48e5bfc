extension RecordKey {
    /// A new random key: a version 4 UUID (RFC 9562) as lowercase text, such as
    /// `"3f0c8a52-9d1e-4b7a-8c2f-5e6d7a8b9c0d"`.
    ///
    /// The 122 random bits come from the system's generator (`getrandom` on Linux), as
    /// `SystemRandomNumberGenerator` draws them. Foundation's `UUID()` opens and reads
    /// `/dev/urandom` for each one on Linux: a few microseconds of system calls per key, and
    /// inside a write transaction they hold the database's only writer.
    public static func uuid() -> RecordKey { RecordKey(uuidText()) }

    /// The text of a new ``uuid()``, for a `String` primary key attribute.
    ///
    /// ```swift
    /// try txn.insert(Tables.orders, Order(id: RecordKey.uuidText(), lines: lines))
    /// ```
    public static func uuidText() -> String {
        var generator = SystemRandomNumberGenerator()
        // Version 4 in the top four bits of byte 6; variant 0b10 in the top two bits of byte 8.
        let high = (generator.next() & ~0x0000_0000_0000_F000) | 0x0000_0000_0000_4000
        let low = (generator.next() & ~0xC000_0000_0000_0000) | 0x8000_0000_0000_0000
        return String(unsafeUninitializedCapacity: 36) { buffer in
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
