/// Case-insensitive comparisons of ASCII bytes read in place: the header checks that run on every
/// request (the fast path's, the browser policy's) make no lowercased copies.
enum ASCIIBytes {
    /// `b` lowercased, if it is an ASCII capital letter.
    static func lowercased(_ b: UInt8) -> UInt8 {
        b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z") ? b + 32 : b
    }

    /// Whether `bytes`, lowercased, are `lowercase` (which is lowercase already).
    static func equals(_ bytes: some Collection<UInt8>, lowercase: StaticString) -> Bool {
        let wanted = UnsafeBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount)
        return bytes.count == wanted.count && zip(bytes, wanted).allSatisfy { lowercased($0) == $1 }
    }

    /// Whether `bytes`, lowercased, begin with `lowercase`.
    static func hasPrefix(_ bytes: some Collection<UInt8>, lowercase: StaticString) -> Bool {
        equals(bytes.prefix(lowercase.utf8CodeUnitCount), lowercase: lowercase)
    }

    /// Whether `bytes`, lowercased, end with `lowercase`.
    static func hasSuffix(_ bytes: some BidirectionalCollection<UInt8>, lowercase: StaticString) -> Bool {
        equals(bytes.suffix(lowercase.utf8CodeUnitCount), lowercase: lowercase)
    }

    /// Whether `bytes`, lowercased, contain `lowercase`.
    static func contains(_ bytes: some Collection<UInt8>, lowercase: StaticString) -> Bool {
        let count = lowercase.utf8CodeUnitCount
        var rest = bytes[...]
        while rest.count >= count {
            if equals(rest.prefix(count), lowercase: lowercase) { return true }
            rest = rest.dropFirst()
        }
        return false
    }

    /// Whether `b` is a hexadecimal digit, either case.
    static func isHexDigit(_ b: UInt8) -> Bool {
        (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "f"))
            || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "F"))
    }
}
