import MicrolithJSON

/// Reads the number syntax of the query language (the JSON number grammar: `-?digits[.digits][e[+-]digits]`).
enum NumberText {
    /// `true` when `text` is `-?digits` (no sign other than a leading minus, no fraction, no exponent).
    static func isIntegral(_ text: Substring.UTF8View) -> Bool {
        var bytes = text[...]
        if bytes.first == UInt8(ascii: "-") { bytes = bytes.dropFirst() }
        return !bytes.isEmpty && bytes.allSatisfy(isDigit)
    }

    /// The integer written as `-?digits`, or `nil` when the text is not integral or does not fit in 64 bits.
    static func integer(_ text: String) -> Int64? {
        guard isIntegral(text[...].utf8) else { return nil }
        return Int64(text)
    }

    /// The number written in `text`: an integer when the text is integral and fits in 64 bits, a double otherwise;
    /// `nil` when the text is not a JSON number or its value is not finite.
    static func number(_ text: String) -> JSONValue? {
        guard isJSONNumber(text) else { return nil }
        if isIntegral(text[...].utf8), let i = Int64(text) { return .int(i) }
        guard let d = Double(text), d.isFinite else { return nil }
        return .double(d)
    }

    /// `true` when `text` follows the JSON number grammar.
    static func isJSONNumber(_ text: String) -> Bool {
        let b = Array(text.utf8)
        var i = 0
        if i < b.count, b[i] == UInt8(ascii: "-") { i += 1 }
        guard digits(b, &i) > 0 else { return false }
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            guard digits(b, &i) > 0 else { return false }
        }
        if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
            i += 1
            if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
            guard digits(b, &i) > 0 else { return false }
        }
        return i == b.count
    }

    private static func digits(_ b: [UInt8], _ i: inout Int) -> Int {
        let start = i
        while i < b.count, isDigit(b[i]) { i += 1 }
        return i - start
    }

    static func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }
}
