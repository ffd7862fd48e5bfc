import Testing

@testable import MicrolithQuery

@Suite("ISO8601Date")
struct ISO8601DateTests {
    @Test(arguments: [
        ("2024-05-01", "2024-05-01T00:00:00.000Z"),
        ("2024-02-29T12:30:45.123456+02:00", "2024-02-29T10:30:45.123Z"),
        ("2024-05-01T10:00Z", "2024-05-01T10:00:00.000Z"),
        ("2024-05-01t10:00:01.5", "2024-05-01T10:00:01.500Z"),
        ("2024-05-01 10:00:01.05-0130", "2024-05-01T11:30:01.050Z"),
        ("2024-12-31T23:30:00-01", "2025-01-01T00:30:00.000Z"),
        ("1969-12-31T23:59:59.999Z", "1969-12-31T23:59:59.999Z"),
        ("2000-02-29", "2000-02-29T00:00:00.000Z"),
        ("0000-01-01T00:00:00-00:01", "0000-01-01T00:01:00.000Z"),
        ("9999-12-31T23:59:59.999Z", "9999-12-31T23:59:59.999Z"),
        ("0", "1970-01-01T00:00:00.000Z"),
        ("2024", "1970-01-01T00:00:02.024Z"),
        ("-1", "1969-12-31T23:59:59.999Z"),
        ("1714557600000", "2024-05-01T10:00:00.000Z"),
    ])
    func normalizes(input: String, expected: String) {
        #expect(ISO8601Date.normalize(input) == expected)
    }

    @Test(arguments: [
        "", "2024-", "2024-05", "2024-5-01", "2024-05-1", "2023-02-29", "1900-02-29", "2024-04-31", "2024-00-10", "2024-13-01",
        "2024-05-01T24:00", "2024-05-01T10:60", "2024-05-01T10:00:60", "2024-05-01T10", "2024-05-01T10:00:00.",
        "2024-05-01T10:00:00+25:00", "2024-05-01T10:00:00+01:60", "2024-05-01Z0", "2024-05-01T10:00:00+1",
        "0000-01-01T00:00:00+00:01", "9999-12-31T23:59:59.999-00:01", "1.5", "99999999999999999", "tomorrow",
    ])
    func rejects(input: String) {
        #expect(ISO8601Date.normalize(input) == nil)
    }

    @Test func civilDayConversionsRoundTrip() {
        for days in stride(from: Int64(-719_528), through: 2_932_896, by: 997) {
            let (y, m, d) = ISO8601Date.civilFromDays(days)
            #expect(ISO8601Date.daysFromCivil(year: y, month: m, day: d) == days)
            #expect((1...12).contains(m) && d >= 1 && d <= Int64(ISO8601Date.daysInMonth(year: Int(y), month: Int(m))))
        }
        #expect(ISO8601Date.daysFromCivil(year: 1970, month: 1, day: 1) == 0)
        #expect(ISO8601Date.daysFromCivil(year: 2000, month: 3, day: 1) == 11_017)
    }

    @Test func formatRange() {
        #expect(ISO8601Date.format(milliseconds: Int64.min) == nil)
        #expect(ISO8601Date.format(milliseconds: Int64.max) == nil)
        #expect(ISO8601Date.format(milliseconds: 86_400_000) == "1970-01-02T00:00:00.000Z")
    }
}
