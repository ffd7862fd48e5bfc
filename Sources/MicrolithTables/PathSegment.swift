/// Strict percent-decoding of one URL path segment (RFC 3986 §2.1).
///
/// Unlike Foundation's `removingPercentEncoding`, whose `nil` callers used to replace with the
/// raw text (so `%FFz` and `%25FFz` named the same record), every failure here is an error that
/// says what is wrong: a `%` not followed by two hex digits, or escapes whose bytes are not UTF-8.
public enum PathSegment {
    /// Why a segment cannot be decoded.
    public struct DecodingError: Error, Sendable, CustomStringConvertible {
        /// What is wrong, for people.
        public var description: String
    }

    /// The decoded text of `segment`.
    public static func decode(_ segment: some StringProtocol) throws(DecodingError) -> String {
        let utf8 = segment.utf8
        guard utf8.contains(UInt8(ascii: "%")) else { return String(segment) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count)
        var index = utf8.startIndex
        var offset = 0
        while index != utf8.endIndex {
            let byte = utf8[index]
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                index = utf8.index(after: index)
                offset += 1
                continue
            }
            let first = utf8.index(after: index)
            let second = first == utf8.endIndex ? first : utf8.index(after: first)
            guard second != utf8.endIndex, let high = hexValue(utf8[first]), let low = hexValue(utf8[second]) else {
                throw DecodingError(description: "malformed percent-escape at byte \(offset): '%' must be followed by two hex digits")
            }
            bytes.append(high << 4 | low)
            index = utf8.index(after: second)
            offset += 3
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw DecodingError(description: "percent-escapes that do not decode to UTF-8 text")
        }
        return text
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
