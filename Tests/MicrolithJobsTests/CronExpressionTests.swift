import MicrolithModules
import MicrolithSchema
import Testing

@Suite struct CronExpressionTests {
    func next(_ expression: String, after text: String) throws -> String? {
        let cron = try CronExpression(expression)
        return cron.next(after: try #require(DateValue.parse(text))).map(DateValue.format)
    }

    @Test func fieldsStepsRangesAndLists() throws {
        #expect(try next("* * * * *", after: "2026-11-23T10:15:30Z") == "2026-11-23T10:16:00.000Z")
        #expect(try next("0 3 * * *", after: "2026-11-23T10:15:00Z") == "2026-11-24T03:00:00.000Z")
        #expect(try next("*/15 * * * *", after: "2026-11-23T10:15:00Z") == "2026-11-23T10:30:00.000Z")
        #expect(try next("5,50 9-17 * * *", after: "2026-11-23T17:51:00Z") == "2026-11-24T09:05:00.000Z")
        #expect(try next("0 0 1 1 *", after: "2026-11-23T00:00:00Z") == "2027-01-01T00:00:00.000Z")
        #expect(try next("0 12 29 2 *", after: "2026-03-01T00:00:00Z") == "2028-02-29T12:00:00.000Z")
        #expect(try next("30 8 * * 1-5/2", after: "2026-11-23T09:00:00Z") == "2026-11-25T08:30:00.000Z")  // Mon → Wed
    }

    @Test func weekdaysCountSundayAsZeroOrSeven() throws {
        // 2026-11-29 is a Sunday.
        #expect(try next("0 0 * * 0", after: "2026-11-23T00:00:00Z") == "2026-11-29T00:00:00.000Z")
        #expect(try next("0 0 * * 7", after: "2026-11-23T00:00:00Z") == "2026-11-29T00:00:00.000Z")
    }

    @Test func bothDayFieldsRestrictedMeansEither() throws {
        // The 1st of the month or a Friday (2026-11-27), whichever comes first.
        #expect(try next("0 0 1 * 5", after: "2026-11-23T00:00:00Z") == "2026-11-27T00:00:00.000Z")
    }

    @Test func impossibleDatesNeverFire() throws {
        #expect(try next("0 0 31 2 *", after: "2026-01-01T00:00:00Z") == nil)
    }

    @Test(arguments: [
        "", "* * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 8", "a * * * *", "5-1 * * * *", "*/0 * * * *", "1/2/3 * * * *",
    ])
    func badExpressionsAreRefused(_ text: String) {
        #expect(throws: CronExpressionError.self) { try CronExpression(text) }
    }
}
