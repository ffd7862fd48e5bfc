public import MicrolithJSON
public import MicrolithSchema

/// A record's primary key: a string (`ID`, `String`) or an integer (`Int`, `Long`).
public enum RecordID: Sendable, Hashable, Comparable, CustomStringConvertible {
    case string(String)
    case int(Int64)

    /// The key as a JSON value.
    public var jsonValue: JSONValue {
        switch self {
        case .string(let s): return .string(s)
        case .int(let i): return .int(i)
        }
    }

    public var description: String {
        switch self {
        case .string(let s): return s
        case .int(let i): return String(i)
        }
    }

    /// Why `text` cannot be a string key, or `nil` when it can.
    ///
    /// The one rule for string keys on every door (REST, the fast path, subscriptions, MQTT,
    /// operations, jobs): a key is non-empty and holds no control character (U+0000–U+001F,
    /// U+007F–U+009F). SQLite binds text up to its first NUL, so `a\u{0}b` would otherwise reach
    /// the record `a`; the other control characters are refused with it so that a key always
    /// prints, logs and round-trips through a URL as itself.
    public static func keyTextProblem(_ text: String) -> String? {
        if text.isEmpty { return "a key must not be empty" }
        for (offset, scalar) in text.unicodeScalars.enumerated() where scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) {
            let code = String(scalar.value, radix: 16, uppercase: true)
            return "a key must not contain control characters; U+\(String(repeating: "0", count: 4 - code.count))\(code) at character \(offset)"
        }
        return nil
    }

    /// Whether this key meets ``keyTextProblem(_:)``'s rule (integer keys always do).
    public var isCanonical: Bool {
        switch self {
        case .string(let s): return Self.keyTextProblem(s) == nil
        case .int: return true
        }
    }

    /// Reads a key from URL text (already percent-decoded), as the table's primary key type says.
    /// Returns `nil` when the text is not a valid key of that type (see ``keyTextProblem(_:)``).
    public init?(text: String, type: AttributeType) {
        switch type {
        case .int:
            guard let i = Int32(text) else { return nil }
            self = .int(Int64(i))
        case .long:
            guard let i = Int64(text) else { return nil }
            self = .int(i)
        default:
            guard Self.keyTextProblem(text) == nil else { return nil }
            self = .string(text)
        }
    }

    /// Reads a key from a JSON value, as the table's primary key type says.
    public init?(json: JSONValue, type: AttributeType) {
        switch (json, type) {
        case (.int(let i), .int) where Int64(Int32.min)...Int64(Int32.max) ~= i: self = .int(i)
        case (.int(let i), .long): self = .int(i)
        case (.double(let d), .int) where d == d.rounded() && Double(Int32.min)...Double(Int32.max) ~= d: self = .int(Int64(d))
        case (.double(let d), .long) where d == d.rounded() && abs(d) < 9.007_199_254_740_992e15: self = .int(Int64(d))
        case (.string(let s), .id), (.string(let s), .string):
            guard Self.keyTextProblem(s) == nil else { return nil }
            self = .string(s)
        default: return nil
        }
    }

    /// What a key of `type` must look like, for error messages.
    public static func keyKind(_ type: AttributeType) -> String {
        switch type {
        case .int: return "a whole number within 32 bits"
        case .long: return "a whole number"
        default: return "a non-empty string without control characters"
        }
    }

    public static func < (lhs: RecordID, rhs: RecordID) -> Bool {
        switch (lhs, rhs) {
        case (.int(let a), .int(let b)): return a < b
        case (.string(let a), .string(let b)): return a.utf8.lexicographicallyPrecedes(b.utf8)
        case (.int, .string): return true
        case (.string, .int): return false
        }
    }
}
