import MicrolithJSON
import Testing

@Suite("JSONParser: values")
struct JSONParserValueTests {
    @Test func literals() throws {
        #expect(identical(try JSONParser.parse("null"), .null))
        #expect(identical(try JSONParser.parse("true"), .bool(true)))
        #expect(identical(try JSONParser.parse("false"), .bool(false)))
        #expect(identical(try JSONParser.parse("\"\""), .string("")))
        #expect(identical(try JSONParser.parse("[]"), .array([])))
        #expect(identical(try JSONParser.parse("{}"), .object(JSONObject())))
    }

    @Test func whitespaceMaySurroundTheValue() throws {
        #expect(identical(try JSONParser.parse(" \t\r\n[ 1 ,\n2 ]\r\n "), .array([.int(1), .int(2)])))
        #expect(identical(try JSONParser.parse("{ \"a\" : { } , \"b\" :[ ] }"), .object(["a": .object(JSONObject()), "b": .array([])])))
    }

    @Test func integersStayIntegers() throws {
        #expect(identical(try JSONParser.parse("0"), .int(0)))
        #expect(identical(try JSONParser.parse("-0"), .int(0)))
        #expect(identical(try JSONParser.parse("42"), .int(42)))
        #expect(identical(try JSONParser.parse("-17"), .int(-17)))
        #expect(identical(try JSONParser.parse("9007199254740993"), .int(9_007_199_254_740_993)))
        #expect(identical(try JSONParser.parse("9223372036854775807"), .int(Int64.max)))
        #expect(identical(try JSONParser.parse("-9223372036854775808"), .int(Int64.min)))
        // Either side of the 18 digits read in place.
        #expect(identical(try JSONParser.parse("999999999999999999"), .int(999_999_999_999_999_999)))
        #expect(identical(try JSONParser.parse("-999999999999999999"), .int(-999_999_999_999_999_999)))
        #expect(identical(try JSONParser.parse("1000000000000000000"), .int(1_000_000_000_000_000_000)))
        #expect(identical(try JSONParser.parse("[-1,20,-300]"), .array([.int(-1), .int(20), .int(-300)])))
    }

    @Test func aDuplicateMemberIsFoundInLargeObjectsToo() throws {
        let members = (0..<12).map { "\"m\($0)\":\($0)" }.joined(separator: ",")
        let error = try #require(parseError("{\(members),\"m10\":0}"))
        #expect(error.reason == "duplicate member name \"m10\"")
        let object = try #require(try JSONParser.parse("{\(members)}").objectValue)
        #expect(object.count == 12 && object["m11"] == 11)
    }

    @Test func integersBeyond64BitsAreRefusedNotRounded() throws {
        #expect(identical(try JSONParser.parse("9223372036854775807"), .int(Int64.max)))
        #expect(identical(try JSONParser.parse("-9223372036854775808"), .int(Int64.min)))
        for text in ["9223372036854775808", "-9223372036854775809", "123456789012345678901234567890"] {
            let error = try #require(parseError(text))
            #expect(error.offset == 0)
            #expect(error.reason.contains("outside the 64-bit range"))
        }
        let nested = try #require(parseError(#"{"a":[1,100000000000000000000]}"#))
        #expect(nested.offset == 8)
        // An exponent asks for a double, rounding and all.
        #expect(identical(try JSONParser.parse("1.2345678901234568e29"), .double(1.2345678901234568e29)))
    }

    @Test func fractionsAndExponentsAreDoubles() throws {
        #expect(identical(try JSONParser.parse("1.0"), .double(1.0)))
        #expect(identical(try JSONParser.parse("-0.0"), .double(-0.0)))
        #expect(identical(try JSONParser.parse("2.5"), .double(2.5)))
        #expect(identical(try JSONParser.parse("1e2"), .double(100)))
        #expect(identical(try JSONParser.parse("1E+2"), .double(100)))
        #expect(identical(try JSONParser.parse("25e-1"), .double(2.5)))
        #expect(identical(try JSONParser.parse("0.1"), .double(0.1)))
        #expect(identical(try JSONParser.parse("1e-400"), .double(0)))
        #expect(identical(try JSONParser.parse("1.7976931348623157e308"), .double(.greatestFiniteMagnitude)))
    }

    @Test func simpleEscapes() throws {
        let parsed = try JSONParser.parse(#""\"\\\/\b\f\n\r\t""#)
        #expect(parsed == .string("\"\\/\u{08}\u{0C}\n\r\t"))
    }

    @Test func unicodeEscapes() throws {
        #expect(try JSONParser.parse(#""\u0041\u00e9\u4E2D""#) == .string("Aé中"))
        #expect(try JSONParser.parse(#""\u0000""#) == .string("\u{0}"))
        #expect(try JSONParser.parse(#""\ud83d\ude00""#) == .string("😀"))
        #expect(try JSONParser.parse(#""\uDBFF\uDFFF""#) == .string("\u{10FFFF}"))
        #expect(try JSONParser.parse(#""x\u0022y""#) == .string("x\"y"))
    }

    @Test func rawUnicodeIsKept() throws {
        #expect(try JSONParser.parse("\"héllo 中文 😀\"") == .string("héllo 中文 😀"))
        #expect(try JSONParser.parse("{\"clé\":\"valeur\"}") == .object(["clé": "valeur"]))
    }

    @Test func escapesMixedWithRawText() throws {
        #expect(try JSONParser.parse(#""abc\ndéf\u00e9\\""#) == .string("abc\ndéfé\\"))
    }

    @Test func objectMembersKeepTheirOrder() throws {
        let parsed = try JSONParser.parse(#"{"z":1,"a":2,"m":3}"#)
        let object = try #require(parsed.objectValue)
        #expect(object.keys == ["z", "a", "m"])
        #expect(object["a"] == .int(2))
    }

    @Test func acceptsAnyByteCollection() throws {
        let bytes = Array("xx[1,2]yy".utf8)
        #expect(identical(try JSONParser.parse(bytes[2..<7]), .array([.int(1), .int(2)])))
    }

    @Test func nestingUpToTheMaximumDepthIsAccepted() throws {
        let depth = JSONParser.maximumDepth
        let arrays = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        var value = try JSONParser.parse(arrays)
        var levels = 0
        while case .array(let elements) = value {
            levels += 1
            value = elements.first ?? .null
        }
        #expect(levels == depth)

        let objects = String(repeating: "{\"a\":", count: depth) + "1" + String(repeating: "}", count: depth)
        #expect(throws: Never.self) { try JSONParser.parse(objects) }
    }

    @Test func nestingDeeperThanTheMaximumIsRefused() {
        let depth = JSONParser.maximumDepth + 1
        let arrays = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        let error = parseError(arrays)
        #expect(error?.offset == JSONParser.maximumDepth)
        #expect(error?.reason.contains("nesting") == true)

        let prefix = String(repeating: "{\"k\":", count: JSONParser.maximumDepth)
        let objects = prefix + "{}" + String(repeating: "}", count: JSONParser.maximumDepth)
        #expect(parseError(objects)?.offset == prefix.utf8.count)

        // Far deeper input fails cleanly instead of exhausting the stack.
        #expect(parseError(String(repeating: "[", count: 100_000)) != nil)
    }
}

@Suite("JSONParser: errors and their offsets")
struct JSONParserErrorTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var input: String
        var offset: Int
        var reason: String
        var testDescription: String { "\(input.debugDescription) → \(offset)" }
    }

    static let cases: [Case] = [
        Case(input: "", offset: 0, reason: "end of input"),
        Case(input: "   ", offset: 3, reason: "end of input"),
        Case(input: "[1,]", offset: 3, reason: "unexpected character"),
        Case(input: "[1 2]", offset: 3, reason: "expected ',' or ']'"),
        Case(input: "[1,2", offset: 4, reason: "end of input"),
        Case(input: "{\"a\" 1}", offset: 5, reason: "':'"),
        Case(input: "{\"a\":1,}", offset: 7, reason: "member name"),
        Case(input: "{a:1}", offset: 1, reason: "member name"),
        Case(input: "{\"a\":1 \"b\":2}", offset: 7, reason: "expected ',' or '}'"),
        Case(input: "{\"a\":1", offset: 6, reason: "end of input"),
        Case(input: "{\"a\":1,\"a\":2}", offset: 7, reason: "duplicate member name \"a\""),
        Case(input: "tru", offset: 0, reason: "invalid literal"),
        Case(input: "[truE]", offset: 1, reason: "invalid literal"),
        Case(input: "nul", offset: 0, reason: "invalid literal"),
        Case(input: "01", offset: 0, reason: "leading zeros"),
        Case(input: "-", offset: 1, reason: "digit"),
        Case(input: "-a", offset: 1, reason: "digit"),
        Case(input: "+1", offset: 0, reason: "unexpected character '+'"),
        Case(input: ".5", offset: 0, reason: "unexpected character '.'"),
        Case(input: "1.", offset: 2, reason: "digit after '.'"),
        Case(input: "1.e5", offset: 2, reason: "digit after '.'"),
        Case(input: "1e", offset: 2, reason: "exponent"),
        Case(input: "1e+", offset: 3, reason: "exponent"),
        Case(input: "1e400", offset: 0, reason: "out of range"),
        Case(input: "-1e400", offset: 0, reason: "out of range"),
        Case(input: "1 2", offset: 2, reason: "after the JSON value"),
        Case(input: "{} x", offset: 3, reason: "after the JSON value"),
        Case(input: "\"abc", offset: 0, reason: "unterminated"),
        Case(input: "\"a\\nbc", offset: 0, reason: "unterminated"),
        Case(input: "\"a\\", offset: 0, reason: "unterminated"),
        Case(input: "\"a\nb\"", offset: 2, reason: "control character"),
        Case(input: "\"\\n\u{01}\"", offset: 3, reason: "control character"),
        Case(input: "\"a\\xb\"", offset: 2, reason: "invalid escape '\\x'"),
        Case(input: "\"\\u12x4\"", offset: 5, reason: "hex digit"),
        Case(input: "\"\\u12", offset: 3, reason: "truncated"),
        Case(input: "\"\\ud800\"", offset: 7, reason: "unpaired surrogate"),
        Case(input: "\"\\ud800\\u0041\"", offset: 13, reason: "low surrogate"),
        Case(input: "\"\\udc00\"", offset: 7, reason: "unpaired surrogate"),
        Case(input: "\u{0C}1", offset: 0, reason: "unexpected character"),
        Case(input: "[1]]", offset: 3, reason: "after the JSON value"),
        Case(input: "NaN", offset: 0, reason: "unexpected character 'N'"),
    ]

    @Test(arguments: cases)
    func malformedInput(_ c: Case) {
        let error = parseError(c.input)
        #expect(error?.offset == c.offset)
        #expect(error?.reason.contains(c.reason) == true, "reason was \(error?.reason ?? "nil")")
    }

    @Test func invalidUTF8InAStringIsRefused() {
        #expect(parseError([0x22, 0xFF, 0x22]) == JSONParseError(offset: 0, reason: "invalid UTF-8 in string"))
        #expect(parseError([0x5B, 0x22, 0x61, 0xC3, 0x22, 0x5D])?.offset == 1)
        // Invalid bytes after an escape take the slow path; still refused.
        #expect(parseError([0x22, 0x5C, 0x6E, 0xED, 0xA0, 0x80, 0x22])?.reason.contains("UTF-8") == true)
    }

    @Test func descriptionNamesTheOffset() {
        let error = JSONParseError(offset: 12, reason: "boom")
        #expect(error.description == "malformed JSON at byte 12: boom")
    }
}
