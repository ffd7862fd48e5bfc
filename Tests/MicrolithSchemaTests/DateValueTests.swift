import MicrolithSchema
import Testing

@Suite("DateValue")
struct DateValueTests {
    @Test(
        "parsing valid texts",
        arguments: [
            ("1970-01-01", 0),
            ("1970-01-01T00:00Z", 0),
            ("1970-01-01T00:00:00.000Z", 0),
            ("1970-01-02", 86_400_000),
            ("2000-02-29T12:34:56.789Z", 951_827_696_789),
            ("2000-02-29T12:34:56.789", 951_827_696_789),
            ("1969-12-31T23:59:59.999Z", -1),
            ("1969-12-31", -86_400_000),
            ("1900-01-01T00:00:00Z", -2_208_988_800_000),
            ("1582-10-15", -141_427 * 86_400_000),
            ("0000-01-01", -62_167_219_200_000),
            ("9999-12-31T23:59:59.999Z", 253_402_300_799_999),
            ("2024-03-10T01:30-05:00", 1_710_052_200_000),
            ("2024-01-01T00:30+01:00", 1_704_065_400_000),
            ("2024-01-01T00:30:00+00:00", 1_704_069_000_000),
            ("2021-06-15T10:00:00.5Z", 1_623_751_200_500),
            ("2021-06-15T10:00:00.05Z", 1_623_751_200_050),
            ("2021-06-15T10:00:00.123456789Z", 1_623_751_200_123),
            ("1969-12-31T19:00:00-05:00", 0),
        ] as [(String, Int64)]
    )
    func parses(text: String, milliseconds: Int64) {
        #expect(DateValue.parse(text) == milliseconds)
    }

    @Test(
        "refusing invalid texts",
        arguments: [
            "", "x", "2024", "2024-1-01", "2024-01-1", "2024-13-01", "2024-00-10", "2024-01-00", "2024-04-31", "2023-02-29",
            "1900-02-29", "2100-02-29", "2024-01-01T24:00", "2024-01-01T12:60", "2024-01-01T12:00:60", "2024-01-01T12",
            "2024-01-01T12:00.5", "2024-01-01Z", "2024-01-01T12:00+0100", "2024-01-01T12:00+01", "2024-01-01T12:00+24:00",
            "2024-01-01T12:00+01:60", "2024-01-01T12:00:00.Z", "2024-01-01T12:00:00.1234567890Z", "2024-01-01T12:00Z ",
            " 2024-01-01", "+2024-01-01", "2024-01-01 12:00", "2024-01-01t12:00", "2024-01-01T12:00z", "２０２４-01-01",
        ]
    )
    func refuses(text: String) {
        #expect(DateValue.parse(text) == nil)
    }

    @Test(
        "each syntax option accepts its form, and only it does",
        arguments: [
            ("2024-05-01t10:00z", DateValue.Syntax.lowercaseLetters, "2024-05-01T10:00Z"),
            ("2024-05-01 10:00:30Z", .spaceSeparator, "2024-05-01T10:00:30Z"),
            ("2024-05-01T10:00+02", .compactOffsets, "2024-05-01T10:00+02:00"),
            ("2024-05-01T10:00:00.05-0130", .compactOffsets, "2024-05-01T10:00:00.05-01:30"),
            ("2024-05-01+02:00", .offsetAfterDate, "2024-05-01T00:00+02:00"),
            ("2024-05-01Z", .offsetAfterDate, "2024-05-01"),
            ("2024-05-01T10:00:00.1234567891Z", .longFractions, "2024-05-01T10:00:00.123Z"),
        ] as [(String, DateValue.Syntax, String)]
    )
    func syntaxOption(text: String, option: DateValue.Syntax, same: String) throws {
        let expected = try #require(DateValue.parse(same))
        #expect(DateValue.parse(text) == nil)
        #expect(DateValue.parse(text, accepting: DateValue.Syntax.query.subtracting(option)) == nil)
        #expect(DateValue.parse(text, accepting: option) == expected)
        #expect(DateValue.parse(text, accepting: .query) == expected)
    }

    @Test(
        "the query syntax still refuses what no option allows",
        arguments: ["2024-05-01T10", "2024-05-01T10:00+1", "2024-05-01 T10:00", "2024-05-01Tz"])
    func querySyntaxRefuses(text: String) {
        #expect(DateValue.parse(text, accepting: .query) == nil)
    }

    @Test("leap years")
    func leapYears() {
        #expect(DateValue.isLeapYear(2000))
        #expect(DateValue.isLeapYear(2024))
        #expect(DateValue.isLeapYear(2400))
        #expect(DateValue.isLeapYear(0))
        #expect(DateValue.isLeapYear(-4))
        #expect(!DateValue.isLeapYear(1900))
        #expect(!DateValue.isLeapYear(2100))
        #expect(!DateValue.isLeapYear(2023))
        #expect(DateValue.daysInMonth(year: 2000, month: 2) == 29)
        #expect(DateValue.daysInMonth(year: 1900, month: 2) == 28)
        #expect(DateValue.daysInMonth(year: 2023, month: 4) == 30)
        #expect(DateValue.daysInMonth(year: 2023, month: 12) == 31)
        #expect(DateValue.parse("2400-02-29") != nil)
        #expect(DateValue.format(DateValue.parse("2000-02-29T23:59:59.999Z")! + 1) == "2000-03-01T00:00:00.000Z")
        #expect(DateValue.format(DateValue.parse("1900-02-28T23:59:59.999Z")! + 1) == "1900-03-01T00:00:00.000Z")
    }

    @Test(
        "formatting",
        arguments: [
            (0, "1970-01-01T00:00:00.000Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
            (-86_400_001, "1969-12-30T23:59:59.999Z"),
            (951_827_696_789, "2000-02-29T12:34:56.789Z"),
            (1_710_052_200_000, "2024-03-10T06:30:00.000Z"),
            (-62_167_219_200_000, "0000-01-01T00:00:00.000Z"),
            (-62_167_219_200_001, "-000001-12-31T23:59:59.999Z"),
            (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
            (253_402_300_800_000, "+010000-01-01T00:00:00.000Z"),
        ] as [(Int64, String)]
    )
    func formats(milliseconds: Int64, text: String) {
        #expect(DateValue.format(milliseconds) == text)
    }

    @Test("range constants")
    func range() {
        #expect(DateValue.format(DateValue.minimumMilliseconds) == "0000-01-01T00:00:00.000Z")
        #expect(DateValue.format(DateValue.maximumMilliseconds) == "9999-12-31T23:59:59.999Z")
    }

    @Test("extreme values format without trapping")
    func extremes() {
        #expect(DateValue.format(Int64.max).hasPrefix("+292278994-08-17T07:12:55.807Z"))
        #expect(DateValue.format(Int64.min).hasPrefix("-292275055-05-16T16:47:04.192Z"))
    }

    @Test("format then parse gives the same instant")
    func roundTrip() {
        var ms: Int64 = -62_167_219_200_000
        while ms < 253_402_300_799_999 {
            let text = DateValue.format(ms)
            #expect(DateValue.parse(text) == ms, "\(text)")
            ms += 86_400_000 * 3_653 + 3_723_456  // about ten years and a bit, to move through the clock
        }
        for sample: Int64 in [-1, 0, 1, 999, 1000, -999, -1000, -1001, 1_700_000_000_123] {
            #expect(DateValue.parse(DateValue.format(sample)) == sample)
        }
    }

    @Test("days and civil dates convert both ways")
    func civil() {
        #expect(DateValue.daysFromCivil(year: 1970, month: 1, day: 1) == 0)
        #expect(DateValue.daysFromCivil(year: 2000, month: 3, day: 1) == 11_017)
        #expect(DateValue.daysFromCivil(year: 1969, month: 12, day: 31) == -1)
        var previous = DateValue.civilFromDays(-800_001)
        for days in Int64(-800_000)...Int64(800_000) where days % 7 == 0 || days.magnitude < 1000 {
            let date = DateValue.civilFromDays(days)
            #expect(DateValue.daysFromCivil(year: date.year, month: date.month, day: date.day) == days)
            #expect((1...12).contains(date.month))
            #expect((1...DateValue.daysInMonth(year: date.year, month: date.month)).contains(date.day))
            #expect(date.year >= previous.year)
            previous = date
        }
    }
}
