/// A five-field cron expression, evaluated in UTC: `minute hour day-of-month month day-of-week`.
///
/// Each field is `*`, a number, a range `a-b`, a step `*/n` or `a-b/n`, or a comma-separated
/// list of those. Minutes are 0–59, hours 0–23, days 1–31, months 1–12, days of the week 0–6
/// (0 and 7 are Sunday). As in classic cron, when both day fields are restricted a day
/// matching either one fires.
public struct CronExpression: Sendable, Hashable, CustomStringConvertible {
    let minutes: Set<Int>
    let hours: Set<Int>
    let days: Set<Int>
    let months: Set<Int>
    let weekdays: Set<Int>
    let daysRestricted: Bool
    let weekdaysRestricted: Bool
    public let description: String

    /// Parses `text`.
    /// - Throws: ``CronExpressionError`` naming the field and what is wrong with it.
    public init(_ text: String) throws(CronExpressionError) {
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard fields.count == 5 else {
            throw CronExpressionError("'\(text)' has \(fields.count) field(s); a cron expression has 5: minute hour day-of-month month day-of-week")
        }
        minutes = try Self.field(fields[0], "minute", 0...59)
        hours = try Self.field(fields[1], "hour", 0...23)
        days = try Self.field(fields[2], "day-of-month", 1...31)
        months = try Self.field(fields[3], "month", 1...12)
        weekdays = Set(try Self.field(fields[4], "day-of-week", 0...7).map { $0 % 7 })
        daysRestricted = fields[2] != "*"
        weekdaysRestricted = fields[4] != "*"
        description = fields.joined(separator: " ")
    }

    static func field(_ text: String, _ name: String, _ range: ClosedRange<Int>) throws(CronExpressionError) -> Set<Int> {
        var values = Set<Int>()
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let pieces = part.split(separator: "/", omittingEmptySubsequences: false)
            guard pieces.count <= 2 else { throw CronExpressionError("\(name) '\(part)' has more than one '/'") }
            var step = 1
            if pieces.count == 2 {
                guard let s = Int(pieces[1]), s > 0 else { throw CronExpressionError("\(name) step '\(pieces[1])' must be a positive integer") }
                step = s
            }
            let lower: Int
            let upper: Int
            if pieces[0] == "*" {
                (lower, upper) = (range.lowerBound, range.upperBound)
            } else {
                let bounds = pieces[0].split(separator: "-", omittingEmptySubsequences: false)
                guard bounds.count <= 2, let a = Int(bounds[0]), let b = Int(bounds.last!) else {
                    throw CronExpressionError("\(name) '\(part)' is not a number, a range a-b, or *")
                }
                guard range.contains(a), range.contains(b) else {
                    throw CronExpressionError("\(name) '\(part)' is outside \(range.lowerBound)–\(range.upperBound)")
                }
                guard a <= b else { throw CronExpressionError("\(name) range '\(part)' runs backwards") }
                // `a/n` means a, a+n, ... to the end of the range.
                (lower, upper) = (a, pieces.count == 2 && bounds.count == 1 ? range.upperBound : b)
            }
            values.formUnion(stride(from: lower, through: upper, by: step))
        }
        return values
    }

    /// The first minute strictly after `milliseconds` (since 1970, UTC) that matches, in
    /// milliseconds; `nil` when no date in the next eight years matches (such as `0 0 31 2 *`).
    public func next(after milliseconds: Int64) -> Int64? {
        let minuteMs: Int64 = 60_000
        var t = (milliseconds / minuteMs + 1) * minuteMs
        if milliseconds < 0 && milliseconds % minuteMs != 0 { t -= minuteMs }
        let limit = t + 8 * 366 * 86_400_000
        while t < limit {
            let day = t >= 0 ? t / 86_400_000 : (t - 86_399_999) / 86_400_000
            let (_, month, dom) = Self.civil(fromDays: day)
            let weekday = Int(((day % 7) + 11) % 7)  // 1970-01-01 was a Thursday (4)
            let dayMatches: Bool
            if daysRestricted && weekdaysRestricted {
                dayMatches = days.contains(dom) || weekdays.contains(weekday)
            } else {
                dayMatches = days.contains(dom) && weekdays.contains(weekday)
            }
            guard months.contains(month), dayMatches else {
                t = (day + 1) * 86_400_000
                continue
            }
            let minuteOfDay = Int((t - day * 86_400_000) / minuteMs)
            var m = minuteOfDay
            while m < 1440 {
                if hours.contains(m / 60) {
                    if minutes.contains(m % 60) { return day * 86_400_000 + Int64(m) * minuteMs }
                    m += 1
                } else {
                    m = (m / 60 + 1) * 60
                }
            }
            t = (day + 1) * 86_400_000
        }
        return nil
    }

    /// Year, month, day of a day count since 1970-01-01 (proleptic Gregorian).
    static func civil(fromDays days: Int64) -> (Int64, Int, Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = Int(doy - (153 * mp + 2) / 5 + 1)
        let m = Int(mp < 10 ? mp + 3 : mp - 9)
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }
}

/// Why a cron expression was refused.
public struct CronExpressionError: Error, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
