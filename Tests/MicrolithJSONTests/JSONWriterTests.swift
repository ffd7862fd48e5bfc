import MicrolithJSON
import Testing

@Suite("JSONWriter")
struct JSONWriterTests {
    @Test func scalars() {
        #expect(text(.null) == "null")
        #expect(text(.bool(true)) == "true")
        #expect(text(.bool(false)) == "false")
        #expect(text(.int(0)) == "0")
        #expect(text(.int(-42)) == "-42")
        #expect(text(.int(Int64.max)) == "9223372036854775807")
        #expect(text(.int(Int64.min)) == "-9223372036854775808")
        #expect(text(.string("")) == "\"\"")
    }

    @Test func integralDoublesKeepAFractionSoTheyReadBackAsDoubles() {
        #expect(text(.double(5)) == "5.0")
        #expect(text(.double(-3)) == "-3.0")
        #expect(text(.double(0)) == "0.0")
        #expect(text(.double(123_456_789_012_345)) == "123456789012345.0")
    }

    @Test func negativeZeroKeepsItsSign() throws {
        // The parser reads "-0.0" as -0.0; the writer must not turn it into 0.0.
        #expect(text(.double(-0.0)) == "-0.0")
        let parsed = try JSONParser.parse(JSONWriter.encode(.double(-0.0)))
        #expect(identical(parsed, .double(-0.0)))
    }

    @Test func otherDoubles() {
        #expect(text(.double(2.5)) == "2.5")
        #expect(text(.double(0.1)) == "0.1")
        #expect(text(.double(1e15)) == "1000000000000000.0")
        #expect(text(.double(1e16)) == "1e+16")
        #expect(text(.double(-1.5e300)) == "-1.5e+300")
        #expect(text(.double(1e-7)) == "1e-07")
    }

    @Test func nonFiniteDoublesBecomeNull() {
        #expect(text(.double(.nan)) == "null")
        #expect(text(.double(.infinity)) == "null")
        #expect(text(.double(-.infinity)) == "null")
    }

    @Test func compactOutputInMemberOrder() {
        var object = JSONObject()
        object["z"] = 1
        object["a"] = [true, nil, "x"]
        object["m"] = ["k": 2.5]
        #expect(text(.object(object)) == #"{"z":1,"a":[true,null,"x"],"m":{"k":2.5}}"#)
        #expect(text([]) == "[]")
        #expect(text(.object(JSONObject())) == "{}")
    }

    @Test func escapesWhatJSONRequires() {
        #expect(text("a\"b") == #""a\"b""#)
        #expect(text("a\\b") == #""a\\b""#)
        #expect(text("\n\r\t") == #""\n\r\t""#)
        #expect(text("\u{0}\u{1}\u{8}\u{C}\u{1F}") == #""\u0000\u0001\u0008\u000c\u001f""#)
        // Nothing else is escaped: `/`, DEL and non-ASCII go out as UTF-8.
        #expect(text("/\u{7F}é😀\u{2028}") == "\"/\u{7F}é😀\u{2028}\"")
    }

    @Test func escapesMemberNames() {
        #expect(text(["a\"\n": 1]) == #"{"a\"\n":1}"#)
    }

    @Test func writeAppendsToExistingBytes() {
        var out = Array("prefix:".utf8)
        JSONWriter.write([1, "two"], into: &out)
        #expect(String(decoding: out, as: UTF8.self) == #"prefix:[1,"two"]"#)
        var string: [UInt8] = []
        JSONWriter.writeString("q\"", into: &string)
        #expect(String(decoding: string, as: UTF8.self) == #""q\"""#)
    }

    @Test func descriptionIsTheCompactText() {
        let value: JSONValue = ["a": [1, 2.5, "x"]]
        #expect(value.description == #"{"a":[1,2.5,"x"]}"#)
    }
}

@Suite("JSON round trips")
struct JSONRoundTripTests {
    @Test func everyControlCharacterAndSurrogatePairRoundTrips() throws {
        var scalars = String.UnicodeScalarView()
        for v in 0..<0x80 { scalars.append(Unicode.Scalar(UInt8(v))) }
        for v: UInt32 in [0xE9, 0x4E2D, 0xFFFD, 0x1F600, 0x10FFFF] { scalars.append(Unicode.Scalar(v)!) }
        let value = JSONValue.string(String(scalars))
        #expect(identical(try JSONParser.parse(JSONWriter.encode(value)), value))
    }

    @Test func numbersKeepTheirKindAndValue() throws {
        let values: [JSONValue] = [
            .int(0), .int(1), .int(-1), .int(Int64.max), .int(Int64.min), .int(9_007_199_254_740_993),
            .double(0), .double(1), .double(-1), .double(0.1), .double(1e15), .double(1e16), .double(-1e15 + 1),
            .double(.leastNonzeroMagnitude), .double(.greatestFiniteMagnitude), .double(-.greatestFiniteMagnitude), .double(1e-7),
            .double(123_456.789), .double(9_223_372_036_854_775_808.0),
        ]
        for value in values {
            let parsed = try JSONParser.parse(JSONWriter.encode(value))
            #expect(identical(parsed, value), "\(value) was written as \(text(value)) and read back as \(parsed)")
        }
    }

    @Test func textRoundTripsThroughParseAndWrite() throws {
        let texts = [
            #"{"id":"p1","price":5,"weight":2.5,"tags":["a","b"],"nested":{"x":null,"y":[[],{}]},"ok":true}"#,
            #"[1,-2,3.5,"é","\u0001","\"",false]"#,
            #""😀""#,
        ]
        for source in texts {
            #expect(text(try JSONParser.parse(source)) == source)
        }
    }

    @Test(arguments: 0..<8)
    func randomValuesRoundTrip(seed: Int) throws {
        var generator = JSONValueGenerator(rng: SplitMix64(seed: UInt64(seed) &* 0x1234_5678_9ABC))
        for _ in 0..<200 {
            let value = generator.value(depth: 4)
            let encoded = JSONWriter.encode(value)
            let parsed = try JSONParser.parse(encoded)
            #expect(identical(parsed, value), "\(String(decoding: encoded, as: UTF8.self))")
            // Writing the parsed value again gives the same bytes.
            #expect(JSONWriter.encode(parsed) == encoded)
        }
    }
}
