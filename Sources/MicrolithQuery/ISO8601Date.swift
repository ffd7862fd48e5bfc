/// Parses ISO 8601 timestamps and formats them in the normalised form the store uses,
/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC, milliseconds).
///
/// Accepted input:
/// - `YYYY-MM-DD`, optionally followed by `T` (or `t` or a space) and `HH:MM`, `HH:MM:SS` or
///   `HH:MM:SS.fraction` (digits beyond milliseconds are truncated);
/// - an optional zone: `Z`, `z`, `+HH`, `+HHMM` or `+HH:MM` (or `-`); without a zone the time is UTC;
/// - or an integer number of milliseconds since 1970-01-01T00:00:00Z (may be negative).
///
/// Years are limited to 0000...9999, both in the input and after applying the zone offset.
enum ISO8601Date {
    static let millisecondsPerDay: Int64 = 86_400_000

    /// The normalised form of `text`, or `nil` when it is neither a valid timestamp nor integer milliseconds.
    static func normalize(_ text: String) -> String? {
        if let ms = NumberText.integer(text) { return format(milliseconds: ms) }
        guard let ms = parse(text) else { return nil }
        return format(milliseconds: ms)
    }

    /// Milliseconds since the epoch of an ISO 8601 timestamp, or `nil` when invalid.
    static func parse(_ text: String) -> Int64? {
        var r = Reader(bytes: Array(text.utf8))
        guard let year = r.digits(4), r.take("-"), let month = r.digits(2), r.take("-"), let day = r.digits(2) else { return nil }
        guard (1...12).contains(month), day >= 1, day <= daysInMonth(year: year, month: month) else { return nil }
        var hour = 0
        var minute = 0
        var second = 0
        var millis = 0
        var zoneMinutes = 0
        if r.take("T") || r.take("t") || r.take(" ") {
            guard let h = r.digits(2), r.take(":"), let m = r.digits(2) else { return nil }
            hour = h
            minute = m
            if r.take(":") {
                guard let s = r.digits(2) else { return nil }
                second = s
                if r.take(".") {
                    var count = 0
                    while let d = r.digit() {
                        if count < 3 { millis = millis * 10 + d }
                        count += 1
                    }
                    guard count > 0 else { return nil }
                    var scale = count
                    while scale < 3 {
                        millis *= 10
                        scale += 1
                    }
                }
            }
            guard hour <= 23, minute <= 59, second <= 59 else { return nil }
        }
        if r.take("Z") || r.take("z") {
            zoneMinutes = 0
        } else if r.peek("+") || r.peek("-") {
            let negative = r.peek("-")
            r.index += 1
            guard let zh = r.digits(2), zh <= 23 else { return nil }
            var zm = 0
            if r.take(":") {
                guard let m = r.digits(2) else { return nil }
                zm = m
            } else if let m = r.digits(2) {
                zm = m
            }
            guard zm <= 59 else { return nil }
            zoneMinutes = (zh * 60 + zm) * (negative ? -1 : 1)
        }
        guard r.atEnd else { return nil }
        let days = daysFromCivil(year: Int64(year), month: Int64(month), day: Int64(day))
        let time = Int64(((hour * 60 + minute - zoneMinutes) * 60 + second) * 1000 + millis)
        return days * millisecondsPerDay + time
    }

    /// The normalised text of a time given in milliseconds since the epoch; `nil` outside years 0000...9999.
    static func format(milliseconds ms: Int64) -> String? {
        // Years 0000...9999 span these bounds; checking first also keeps the arithmetic from overflowing.
        let lowest = daysFromCivil(year: 0, month: 1, day: 1) * millisecondsPerDay
        let highest = daysFromCivil(year: 10000, month: 1, day: 1) * millisecondsPerDay
        guard ms >= lowest, ms < highest else { return nil }
        let (days, rest) = floorDivide(ms, millisecondsPerDay)
        let (year, month, day) = civilFromDays(days)
        let millis = rest % 1000
        let totalSeconds = rest / 1000
        let second = totalSeconds % 60
        let minute = (totalSeconds / 60) % 60
        let hour = totalSeconds / 3600
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(hour, 2)):\(pad(minute, 2)):\(pad(second, 2)).\(pad(millis, 3))Z"
    }

    static func isLeapYear(_ year: Int) -> Bool {
        (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
    }

    static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: return isLeapYear(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date, counted in 400-year cycles of 146 097 days
    /// with years starting on March 1st so that the leap day falls last.
    static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let (cycle, yearOfCycle) = floorDivide(y, 400)
        let monthFromMarch = (month + 9) % 12
        let dayOfYear = (153 * monthFromMarch + 2) / 5 + day - 1
        let dayOfCycle = yearOfCycle * 365 + yearOfCycle / 4 - yearOfCycle / 100 + dayOfYear
        // 719 468 days separate 0000-03-01 from 1970-01-01.
        return cycle * 146_097 + dayOfCycle - 719_468
    }

    /// The inverse of ``daysFromCivil(year:month:day:)``.
    static func civilFromDays(_ days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let (cycle, dayOfCycle) = floorDivide(days + 719_468, 146_097)
        let yearOfCycle = (dayOfCycle - dayOfCycle / 1460 + dayOfCycle / 36_524 - dayOfCycle / 146_096) / 365
        let dayOfYear = dayOfCycle - (365 * yearOfCycle + yearOfCycle / 4 - yearOfCycle / 100)
        let monthFromMarch = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthFromMarch + 2) / 5 + 1
        let month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9
        let year = yearOfCycle + cycle * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }

    private static func floorDivide(_ a: Int64, _ b: Int64) -> (Int64, Int64) {
        var q = a / b
        var r = a % b
        if r < 0 {
            q -= 1
            r += b
        }
        return (q, r)
    }

    private static func pad(_ value: Int64, _ width: Int) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }

    private struct Reader {
        var bytes: [UInt8]
        var index = 0

        var atEnd: Bool { index == bytes.count }

        func peek(_ c: Unicode.Scalar) -> Bool { index < bytes.count && bytes[index] == UInt8(ascii: c) }

        mutating func take(_ c: Unicode.Scalar) -> Bool {
            guard peek(c) else { return false }
            index += 1
            return true
        }

        mutating func digit() -> Int? {
            guard index < bytes.count, NumberText.isDigit(bytes[index]) else { return nil }
            defer { index += 1 }
            return Int(bytes[index] - UInt8(ascii: "0"))
        }

        mutating func digits(_ count: Int) -> Int? {
            guard index + count <= bytes.count else { return nil }
            var value = 0
            for _ in 0..<count {
                guard let d = digit() else { return nil }
                value = value * 10 + d
            }
            return value
        }
    }
}
