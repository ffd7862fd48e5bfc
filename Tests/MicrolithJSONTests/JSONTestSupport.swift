import MicrolithJSON

/// Structural identity: unlike `==`, an integer is never identical to a double, member order
/// matters, and `-0.0` differs from `0.0`.
func identical(_ a: JSONValue, _ b: JSONValue) -> Bool {
    switch (a, b) {
    case (.null, .null): return true
    case (.bool(let x), .bool(let y)): return x == y
    case (.int(let x), .int(let y)): return x == y
    case (.double(let x), .double(let y)): return x.bitPattern == y.bitPattern
    case (.string(let x), .string(let y)): return x.utf8.elementsEqual(y.utf8)
    case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy { identical($0, $1) }
    case (.object(let x), .object(let y)):
        return x.keys == y.keys && zip(x.values, y.values).allSatisfy { identical($0, $1) }
    default: return false
    }
}

/// The compact JSON text of `value`.
func text(_ value: JSONValue) -> String {
    String(decoding: JSONWriter.encode(value), as: UTF8.self)
}

/// The parse error for `input`, or `nil` when it parses.
func parseError(_ input: String) -> JSONParseError? {
    parseError(Array(input.utf8))
}

/// The parse error for `bytes`, or `nil` when they parse.
func parseError(_ bytes: [UInt8]) -> JSONParseError? {
    do {
        _ = try JSONParser.parse(bytes)
        return nil
    } catch {
        return error
    }
}

/// Random JSON values, including awkward strings and numbers, nested up to `depth`.
struct JSONValueGenerator {
    var rng: SplitMix64

    private static let scalars: [Unicode.Scalar] = [
        "a", "Z", "0", " ", "\"", "\\", "/", "\n", "\r", "\t", "\u{00}", "\u{01}", "\u{08}", "\u{0C}", "\u{1F}", "\u{7F}",
        "é", "ß", "中", "\u{2028}", "\u{FEFF}", "😀", "\u{10FFFF}",
    ]

    mutating func string() -> String {
        let count = Int.random(in: 0...8, using: &rng)
        var s = String.UnicodeScalarView()
        for _ in 0..<count { s.append(Self.scalars.randomElement(using: &rng)!) }
        return String(s)
    }

    private static let specialDoubles: [Double] = [
        0.1, 0.5, 1e15, 1e16, 123_456_789_012_345.0, 1e-7, .leastNonzeroMagnitude, .greatestFiniteMagnitude,
    ]

    mutating func double() -> Double {
        switch Int.random(in: 0...6, using: &rng) {
        case 0: return Double(Int.random(in: -1000...1000, using: &rng))
        case 1: return Double.random(in: -1...1, using: &rng)
        case 2: return Double.random(in: -1e300...1e300, using: &rng)
        case 3: return Double(Int.random(in: -5...5, using: &rng)) * 1e15
        case 4: return Double.random(in: 0...1e-300, using: &rng)
        case 5: return Self.specialDoubles.randomElement(using: &rng)!
        default: return Double(bitPattern: rng.next() & 0x7FEF_FFFF_FFFF_FFFF) * (Bool.random(using: &rng) ? 1 : -1)
        }
    }

    mutating func value(depth: Int) -> JSONValue {
        let kinds = depth > 0 ? 8 : 6
        switch Int.random(in: 0..<kinds, using: &rng) {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &rng))
        case 2:
            let choices: [Int64] = [0, 1, -1, Int64.max, Int64.min, 9_007_199_254_740_993, Int64.random(in: .min ... .max, using: &rng)]
            return .int(choices.randomElement(using: &rng)!)
        case 3: return .double(double())
        case 4, 5: return .string(string())
        case 6:
            let count = Int.random(in: 0...4, using: &rng)
            return .array((0..<count).map { _ in value(depth: depth - 1) })
        default:
            var object = JSONObject()
            for _ in 0..<Int.random(in: 0...4, using: &rng) { object[string()] = value(depth: depth - 1) }
            return .object(object)
        }
    }
}
