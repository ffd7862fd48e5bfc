import MicrolithJSON
import MicrolithSchema

/// Parses the query string of a REST request (`GET /Table/?...`) into a ``Query``.
///
/// ## Language
/// - Terms are joined by `&` (AND) and `|` (OR); `&` binds tighter than `|`, and `[` `]` or `(` `)`
///   group: `[category=shoes|category=boots]&price=lt=100`, `(category=shoes|category=boots)&...`.
///   A `(` where a term starts opens a group (after a name it opens a function). Inside a `( )`
///   group a `)` ends the value before it (write `%29` for a literal one). Nested groups of the same
///   kind are flattened, and a group of one term is that term.
/// - Comparisons: `attr=value` and `attr==value` (equal), `attr!=value` (not equal), and
///   `attr=OP=value` with OP one of `eq`, `ne`, `gt`, `ge`, `lt`, `le`, `sw` (starts with), `ct` (contains).
///   Dotted attribute paths (`brand.name=Acme`) follow relationships and nested objects.
/// - Chained ranges: a term written `OP=value` (OP an operator name, a single `=`) that directly
///   follows a comparison (after `&` or `|`) applies OP to that comparison's attribute:
///   `price=gt=10&lt=20` is `price > 10 AND price < 20`. An attribute literally named like an
///   operator must then be written with `==` (`lt==20`) or an explicit operator (`lt=eq=20`).
///   At the start of the query or of a group, or after a group or a function, `lt=20` compares the
///   attribute `lt`.
/// - Values are percent-decoded after the query is split, so `%26`, `%7C`, `%5B`, `%5D`, `%3D` stand
///   for literal `&`, `|`, `[`, `]`, `=`. A `+` is a literal plus sign, never a space (write `%20`).
///   A literal `[` or `=` inside a value is an error; `(`, `)` and `!` are accepted as they are
///   (outside `( )` groups).
///   `null` is the null value; `number:`, `string:`, `boolean:` and `date:` fix the type
///   (see ``QueryValue``); any other text stays ``QueryValue/untyped(_:)`` until
///   ``Query/bound(to:schema:)`` converts it to the attribute's declared type.
///   `date:` accepts ISO 8601 (`2024-05-01`, `2024-05-01T10:00:00.5+02:00`; UTC without a zone)
///   or integer milliseconds since 1970, and yields the string `YYYY-MM-DDTHH:MM:SS.mmmZ` in UTC.
/// - Functions, ANDed with the filter, each at most once: `select(a,b,rel{x,y{z}})`,
///   `sort(+a,-b,c.d)`, `limit(n)` (first `n` records) and `limit(start,end)`.
///   They may stand anywhere among the top-level `&` terms, but not inside a group and not in a query
///   whose top level is an OR (group the alternatives with `[ ]` instead).
/// - Attribute names and path segments are percent-decoded too (after splitting on `.`);
///   operators, function names and `limit` numbers must be written literally.
/// - The empty query string is the empty ``Query`` (every record).
///
/// Every malformed input throws a ``QuerySyntaxError`` whose offset counts characters of the raw string.
public enum QueryParser {
    /// Parses `rawQuery`, the text after `?` exactly as received (still percent-encoded).
    public static func parse(_ rawQuery: String) throws(QuerySyntaxError) -> Query {
        var parser = QueryTextParser(text: Array(rawQuery))
        return try parser.parseQuery()
    }

    /// Parses `text` as ``parse(_:)`` does, with one addition: a comparison's value written as a
    /// lone `?` (`categoryId=?`, `price=gt=?&lt=?`) is a placeholder, filled by
    /// ``QueryTemplate/filled(with:)``. A literal question mark is still written `%3F`.
    public static func parseTemplate(_ text: String) throws(QuerySyntaxError) -> QueryTemplate {
        var parser = QueryTextParser(text: Array(text))
        parser.placeholders = []
        let query = try parser.parseQuery()
        return QueryTemplate(query: query, placeholders: parser.placeholders ?? [])
    }
}

/// The recursive-descent parser behind ``QueryParser``.
struct QueryTextParser {
    let text: [Character]
    var index = 0
    var query = Query()
    /// The closing characters of the open groups, innermost last.
    var closers: [Character] = []
    /// How many groups are open.
    var depth: Int { closers.count }
    /// How many `( )` groups are open (inside one, `)` ends a value).
    var parenDepth = 0
    /// The path of the comparison that was the previous term, for chained ranges.
    var previousPath: [String]?
    /// Offsets of the functions seen so far, by name.
    var functionOffsets: [String: Int] = [:]
    /// Offset of the first `|` outside any group.
    var topLevelOrOffset: Int?
    /// When parsing a template: the offsets of the comparisons whose value is a placeholder.
    var placeholders: [Int]?

    init(text: [Character]) {
        self.text = text
    }

    /// The deepest nesting of groups accepted (deeper input is an error, not a stack overflow).
    static let maximumDepth = 64

    static let termEnd: Set<Character> = ["&", "|", "]"]
    static let nameEnd: Set<Character> = ["=", "!", "&", "|", "[", "]", "(", ")"]

    var current: Character? { index < text.count ? text[index] : nil }

    func error(_ offset: Int, _ message: String) -> QuerySyntaxError {
        QuerySyntaxError(offset: offset, message: message)
    }

    // MARK: Boolean structure

    mutating func parseQuery() throws(QuerySyntaxError) -> Query {
        if text.isEmpty { return query }
        let filter = try parseOr()
        if let c = current {
            if c == "]" { throw error(index, "']' without a matching '['") }
            if c == ")" { throw error(index, "')' without a matching '('") }
            throw error(index, "expected '&' or '|' but found '\(c)'")
        }
        query.filter = filter
        return query
    }

    mutating func parseOr() throws(QuerySyntaxError) -> Condition? {
        var alternatives: [Condition] = []
        while true {
            if let condition = try parseAnd() {
                if case .or(let inner) = condition {
                    alternatives.append(contentsOf: inner)
                } else {
                    alternatives.append(condition)
                }
            }
            guard current == "|" else { break }
            if depth == 0 {
                if topLevelOrOffset == nil { topLevelOrOffset = index }
                if let offset = functionOffsets.values.min() {
                    throw error(offset, "functions cannot be combined with a top-level '|'; group the alternatives in '[ ]'")
                }
            }
            index += 1
        }
        // Functions are refused inside groups and beside a top-level OR, so an and-chain made only
        // of functions (the `nil` above) is always the whole query.
        switch alternatives.count {
        case 0: return nil
        case 1: return alternatives[0]
        default: return .or(alternatives)
        }
    }

    mutating func parseAnd() throws(QuerySyntaxError) -> Condition? {
        var terms: [Condition] = []
        while true {
            try expectTermStart()
            if let condition = try parseTerm() {
                if case .and(let inner) = condition {
                    terms.append(contentsOf: inner)
                } else {
                    terms.append(condition)
                }
            }
            guard current == "&" else { break }
            index += 1
        }
        switch terms.count {
        case 0: return nil
        case 1: return terms[0]
        default: return .and(terms)
        }
    }

    /// Throws when no term starts at the current position (`&&`, a trailing `|`, `[]`, ...).
    func expectTermStart() throws(QuerySyntaxError) {
        guard let c = current else {
            if index > 0 { throw error(index, "expected a term after '\(text[index - 1])'") }
            throw error(index, "expected a term")
        }
        switch c {
        case "&", "|":
            throw error(index, "expected a term before '\(c)'")
        case "]":
            throw error(index, "expected a term before ']'")
        case ")" where parenDepth > 0:
            throw error(index, "expected a term before ')'")
        default:
            return
        }
    }

    mutating func parseTerm() throws(QuerySyntaxError) -> Condition? {
        if let opener = current, opener == "[" || opener == "(" {
            let open = index
            let closer: Character = opener == "[" ? "]" : ")"
            guard depth < Self.maximumDepth else {
                throw error(open, "groups are nested more than \(Self.maximumDepth) deep")
            }
            index += 1
            closers.append(closer)
            if closer == ")" { parenDepth += 1 }
            previousPath = nil
            let inner = try parseOr()
            guard let c = current else { throw error(open, "'\(opener)' is never closed") }
            guard c == closer else { throw error(index, "expected '&', '|' or '\(closer)' but found '\(c)'") }
            index += 1
            closers.removeLast()
            if closer == ")" { parenDepth -= 1 }
            previousPath = nil
            return inner
        }
        let start = index
        while let c = current, !Self.nameEnd.contains(c) { index += 1 }
        guard let c = current, c == "=" || c == "!" || c == "(" else {
            if let c = current {
                if c == ")" && parenDepth > 0 && index > start {
                    throw error(start, "expected an operator ('=', '==', '!=' or '=op=') after '\(String(text[start..<index]))'")
                }
                if c == ")" { throw error(index, "unexpected ')'") }
                if c == "[" { throw error(index, "unexpected '[' after an attribute name") }
            }
            throw error(start, "expected an operator ('=', '==', '!=' or '=op=') after '\(String(text[start..<index]))'")
        }
        if c == "(" {
            try parseFunction(nameStart: start)
            previousPath = nil
            return nil
        }
        return try parseComparison(nameStart: start)
    }

    // MARK: Comparisons

    mutating func parseComparison(nameStart: Int) throws(QuerySyntaxError) -> Condition {
        let nameEnd = index
        guard nameEnd > nameStart else { throw error(nameStart, "empty attribute name") }
        let rawName = String(text[nameStart..<nameEnd])
        var op = ComparisonOperator.eq
        var chained = false
        if current == "!" {
            index += 1
            guard current == "=" else { throw error(index, "expected '=' after '!'") }
            index += 1
            op = .ne
        } else {
            let equals = index
            index += 1
            var j = index
            while j < text.count, !["=", "&", "|", "[", "]"].contains(text[j]) { j += 1 }
            if j < text.count, text[j] == "=" {
                let opText = String(text[index..<j])
                if !opText.isEmpty {
                    guard let named = ComparisonOperator(rawValue: opText) else {
                        throw error(equals, "unknown operator '=\(opText)='")
                    }
                    op = named
                }
                index = j + 1
            } else if let named = ComparisonOperator(rawValue: rawName), previousPath != nil {
                op = named
                chained = true
            }
        }
        let path: [String]
        if chained, let previousPath {
            path = previousPath
        } else {
            path = try parsePath(from: nameStart, to: nameEnd)
        }
        let valueStart = index
        while let c = current, !Self.termEnd.contains(c), !(c == ")" && parenDepth > 0) {
            if c == "[" { throw error(index, "a '[' inside a value must be percent-encoded as %5B") }
            if c == "=" { throw error(index, "a '=' inside a value must be percent-encoded as %3D") }
            index += 1
        }
        let value: QueryValue
        if placeholders != nil, index == valueStart + 1, text[valueStart] == "?" {
            placeholders?.append(nameStart)
            value = .untyped("?")
        } else {
            value = try typedValue(try percentDecode(from: valueStart, to: index), offset: valueStart)
        }
        previousPath = path
        return .compare(Comparison(path: path, op: op, value: value, offset: nameStart))
    }

    /// Splits `text[from..<to]` on `.` and percent-decodes each segment.
    func parsePath(from start: Int, to end: Int) throws(QuerySyntaxError) -> [String] {
        var segments: [String] = []
        var segmentStart = start
        for i in start...end where i == end || text[i] == "." {
            guard i > segmentStart else { throw error(segmentStart, "empty segment in attribute path") }
            let segment = try percentDecode(from: segmentStart, to: i)
            guard !segment.isEmpty else { throw error(segmentStart, "empty segment in attribute path") }
            segments.append(segment)
            segmentStart = i + 1
        }
        return segments
    }

    /// The value a decoded text denotes: `null`, a type-prefixed value, or untyped text.
    func typedValue(_ decoded: String, offset: Int) throws(QuerySyntaxError) -> QueryValue {
        if decoded == "null" { return .typed(.null) }
        guard let colon = decoded.firstIndex(of: ":") else { return .untyped(decoded) }
        let rest = String(decoded[decoded.index(after: colon)...])
        switch decoded[..<colon] {
        case "string":
            return .typed(.string(rest))
        case "number":
            guard let number = NumberText.number(rest) else { throw error(offset, "'\(rest)' is not a number") }
            return .typed(number)
        case "boolean":
            switch rest {
            case "true": return .typed(.bool(true))
            case "false": return .typed(.bool(false))
            default: throw error(offset, "'\(rest)' is not a boolean (true or false)")
            }
        case "date":
            guard let date = DateValue.normalize(queryText: rest) else {
                throw error(offset, "'\(rest)' is not an ISO 8601 date or a number of milliseconds")
            }
            return .typed(.string(date))
        default:
            return .untyped(decoded)
        }
    }

    /// Percent-decodes `text[from..<to]`; `+` stays a plus sign.
    func percentDecode(from start: Int, to end: Int) throws(QuerySyntaxError) -> String {
        var bytes: [UInt8] = []
        var i = start
        var plain = true
        while i < end {
            let c = text[i]
            if c == "%" {
                plain = false
                guard i + 2 < end, let high = hexValue(text[i + 1]), let low = hexValue(text[i + 2]) else {
                    throw error(i, "bad percent escape: '%' must be followed by two hexadecimal digits")
                }
                bytes.append(high << 4 | low)
                i += 3
            } else {
                bytes.append(contentsOf: String(c).utf8)
                i += 1
            }
        }
        if plain { return String(text[start..<end]) }
        guard let decoded = String(validating: bytes, as: UTF8.self) else {
            throw error(start, "percent-encoded bytes are not valid UTF-8")
        }
        // SQLite binds text up to its first NUL: `a%00b` would match (or delete) `a`.
        if bytes.contains(0) { throw error(start, "a NUL character (%00) cannot appear in a query") }
        return decoded
    }

    func hexValue(_ c: Character) -> UInt8? {
        guard let ascii = c.asciiValue else { return nil }
        switch ascii {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return ascii - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return ascii - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return ascii - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
