import MicrolithSchema
import Testing

@testable import MicrolithQuery

/// Dates in query values: ``DateValue`` with every ``DateValue/Syntax`` option, or milliseconds.
@Suite("Query dates")
struct QueryDateTests {
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
        #expect(DateValue.normalize(queryText: input) == expected)
    }

    @Test(arguments: [
        "", "2024-", "2024-05", "2024-5-01", "2024-05-1", "2023-02-29", "1900-02-29", "2024-04-31", "2024-00-10", "2024-13-01",
        "2024-05-01T24:00", "2024-05-01T10:60", "2024-05-01T10:00:60", "2024-05-01T10", "2024-05-01T10:00:00.",
        "2024-05-01T10:00:00+25:00", "2024-05-01T10:00:00+01:60", "2024-05-01Z0", "2024-05-01T10:00:00+1",
        "0000-01-01T00:00:00+00:01", "9999-12-31T23:59:59.999-00:01", "1.5", "99999999999999999", "tomorrow",
    ])
    func rejects(input: String) {
        #expect(DateValue.normalize(queryText: input) == nil)
    }

    @Test func theStoredFormIsTheOneRecordsGet() {
        #expect(DateValue.normalize(queryText: "86400000") == "1970-01-02T00:00:00.000Z")
        #expect(DateValue.normalize(queryText: "2024-05-01") == DateValue.format(DateValue.parse("2024-05-01")!))
        #expect(DateValue.normalize(queryText: String(Int64.max)) == nil)
        #expect(DateValue.normalize(queryText: String(Int64.min)) == nil)
    }
}
