/// The one ISO 8601 codec: conversions between date texts and milliseconds since
/// 1970-01-01T00:00:00Z, the two forms a `Date` attribute accepts; query values use it too.
///
/// Accepted texts: `YYYY-MM-DD` (midnight UTC) or `YYYY-MM-DDTHH:MM`, optionally followed by
/// `:SS`, then (only after seconds) `.fraction` of 1 to 9 digits, then `Z` or `±HH:MM`. A time
/// without an offset is UTC. Digits beyond milliseconds are truncated. The calendar is the
/// proleptic Gregorian calendar. ``Syntax`` widens what ``parse(_:accepting:)`` takes.
public enum DateValue {
    /// Forms a text may take beyond the ones every caller accepts.
    ///
    /// Record values take none of them (a stored date is compared and indexed as text, so what
    /// a client sends should already be close to the stored form); query values, typed by hand
    /// into URLs, take them all (``query``).
    public struct Syntax: OptionSet, Sendable, Hashable {
        public let rawValue: Int

        public init(rawValue: Int) {
            self.rawValue = rawValue
        }

        /// `t` for `T` and `z` for `Z` (RFC 3339 allows either case).
        public static let lowercaseLetters = Syntax(rawValue: 1 << 0)
        /// A space between the date and the time, for `T` (RFC 3339 allows it for readability).
        public static let spaceSeparator = Syntax(rawValue: 1 << 1)
        /// Offsets of hours alone or without a colon: `+02`, `-0130`.
        public static let compactOffsets = Syntax(rawValue: 1 << 2)
        /// `Z` or an offset right after a date without a time (that day's midnight there).
        public static let offsetAfterDate = Syntax(rawValue: 1 << 3)
        /// Fractions of any length (digits beyond milliseconds are still truncated).
        public static let longFractions = Syntax(rawValue: 1 << 4)

        /// What query values accept: every form above.
        public static let query: Syntax = [.lowercaseLetters, .spaceSeparator, .compactOffsets, .offsetAfterDate, .longFractions]
    }

    private static let millisecondsPerDay: Int64 = 86_400_000

    /// 0000-01-01T00:00:00.000Z, the earliest instant a `Date` attribute holds.
    public static let minimumMilliseconds: Int64 = daysFromCivil(year: 0, month: 1, day: 1) * 86_400_000

    /// 9999-12-31T23:59:59.999Z, the latest instant a `Date` attribute holds.
    public static let maximumMilliseconds: Int64 = daysFromCivil(year: 10_000, month: 1, day: 1) * 86_400_000 - 1

    /// The milliseconds since 1970 of an ISO 8601 text, or `nil` when the text is not in one of
    /// the accepted forms (those of the type, widened by `syntax`) or names an impossible date or
    /// time (such as February 30 or 24:00). An offset may take the result outside
    /// ``minimumMilliseconds``...``maximumMilliseconds``; callers that keep dates check.
    public static func parse(_ text: String, accepting syntax: Syntax = []) -> Int64? {
        var scanner = Scanner(bytes: Array(text.utf8))
        guard let year = scanner.digits(4), scanner.skip("-"),
            let month = scanner.digits(2), scanner.skip("-"),
            let day = scanner.digits(2),
            (1...12).contains(month), (1...daysInMonth(year: year, month: month)).contains(day)
        else { return nil }
        var milliseconds = daysFromCivil(year: year, month: month, day: day) * millisecondsPerDay
        if scanner.isAtEnd { return milliseconds }
        let separator =
            scanner.skip("T") || (syntax.contains(.lowercaseLetters) && scanner.skip("t"))
            || (syntax.contains(.spaceSeparator) && scanner.skip(" "))
        if separator {
            guard let hour = scanner.digits(2), scanner.skip(":"), let minute = scanner.digits(2), hour < 24, minute < 60 else { return nil }
            var second: Int64 = 0
            var fraction: Int64 = 0
            if scanner.skip(":") {
                guard let s = scanner.digits(2), s < 60 else { return nil }
                second = s
                if scanner.skip(".") {
                    let maximumDigits = syntax.contains(.longFractions) ? Int.max : 9
                    guard let (value, count) = scanner.fraction(maximumDigits: maximumDigits), count > 0 else { return nil }
                    fraction = value
                    // `value` holds the first min(count, 3) digits: scale it to exactly three.
                    for _ in min(count, 3)..<3 { fraction *= 10 }
                }
            }
            milliseconds += ((hour * 60 + minute) * 60 + second) * 1000 + fraction
        } else if !syntax.contains(.offsetAfterDate) {
            return nil
        }
        if scanner.skip("Z") || (syntax.contains(.lowercaseLetters) && scanner.skip("z")) {
            // UTC.
        } else if let sign = scanner.sign() {
            guard let offsetHour = scanner.digits(2), offsetHour < 24 else { return nil }
            var offsetMinute: Int64 = 0
            if scanner.skip(":") {
                guard let m = scanner.digits(2) else { return nil }
                offsetMinute = m
            } else if syntax.contains(.compactOffsets) {
                offsetMinute = scanner.digits(2) ?? 0
            } else {
                return nil
            }
            guard offsetMinute < 60 else { return nil }
            // Local time = UTC + offset, so UTC = local time - offset.
            milliseconds -= sign * (offsetHour * 60 + offsetMinute) * 60_000
        }
        return scanner.isAtEnd ? milliseconds : nil
    }

    /// The instant `milliseconds` after 1970-01-01T00:00:00Z as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    ///
    /// Years outside 0000...9999 use the ISO 8601 expanded form: a sign and at least six digits
    /// (`-000001-12-31T00:00:00.000Z`), which ``parse(_:)`` does not accept.
    public static func format(_ milliseconds: Int64) -> String {
        let (days, remainder) = floorDivide(milliseconds, millisecondsPerDay)
        let (year, month, day) = civilFromDays(days)
        let hour = remainder / 3_600_000
        let minute = remainder / 60_000 % 60
        let second = remainder / 1000 % 60
        let millisecond = remainder % 1000
        let yearText: String
        if (0...9999).contains(year) {
            yearText = pad(year, 4)
        } else {
            yearText = (year < 0 ? "-" : "+") + pad(year.magnitude, 6)
        }
        return "\(yearText)-\(pad(month, 2))-\(pad(day, 2))T\(pad(hour, 2)):\(pad(minute, 2)):\(pad(second, 2)).\(pad(millisecond, 3))Z"
    }

    /// `true` when `year` (proleptic Gregorian) has a February 29.
    public static func isLeapYear(_ year: Int64) -> Bool {
        year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
    }

    /// The number of days in `month` (1...12) of `year`.
    public static func daysInMonth(year: Int64, month: Int64) -> Int64 {
        switch month {
        case 2: return isLeapYear(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// The number of days from 1970-01-01 to the given date (negative before 1970).
    public static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        // Count from 0000-03-01 so that the leap day is the last day of a counted year; the
        // 400-year Gregorian cycle ("era") has exactly 146097 days.
        let y = month <= 2 ? year - 1 : year
        let era = floorDivide(y, 400).quotient
        let yearOfEra = y - era * 400
        let monthFromMarch = (month + 9) % 12
        let dayOfYear = (153 * monthFromMarch + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        // 719468 days separate 0000-03-01 from 1970-01-01.
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The date `days` days after 1970-01-01 (before it when negative).
    public static func civilFromDays(_ days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let shifted = days + 719_468
        let era = floorDivide(shifted, 146_097).quotient
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthFromMarch = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthFromMarch + 2) / 5 + 1
        let month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }

    /// Division rounding toward negative infinity, with a remainder in `0..<divisor`.
    private static func floorDivide(_ value: Int64, _ divisor: Int64) -> (quotient: Int64, remainder: Int64) {
        var quotient = value / divisor
        var remainder = value % divisor
        if remainder < 0 {
            quotient -= 1
            remainder += divisor
        }
        return (quotient, remainder)
    }

    private static func pad(_ value: some BinaryInteger, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }

    /// A cursor over the UTF-8 bytes of a date text.
    private struct Scanner {
        let bytes: [UInt8]
        var position = 0

        var isAtEnd: Bool { position == bytes.count }

        /// Consumes `character` when it is next.
        mutating func skip(_ character: Unicode.Scalar) -> Bool {
            guard position < bytes.count, bytes[position] == UInt8(ascii: character) else { return false }
            position += 1
            return true
        }

        /// Consumes exactly `count` ASCII digits and returns their value.
        mutating func digits(_ count: Int) -> Int64? {
            guard position + count <= bytes.count else { return nil }
            var value: Int64 = 0
            for byte in bytes[position..<position + count] {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
                value = value * 10 + Int64(byte - UInt8(ascii: "0"))
            }
            position += count
            return value
        }

        /// Consumes a run of digits; `nil` when it is longer than `maximumDigits`. The value is
        /// that of the first three digits at most (the milliseconds of a fraction).
        mutating func fraction(maximumDigits: Int) -> (value: Int64, count: Int)? {
            var value: Int64 = 0
            var count = 0
            while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) {
                count += 1
                if count > maximumDigits { return nil }
                if count <= 3 { value = value * 10 + Int64(bytes[position] - UInt8(ascii: "0")) }
                position += 1
            }
            return (value, count)
        }

        /// Consumes `+` (returning 1) or `-` (returning -1).
        mutating func sign() -> Int64? {
            if skip("+") { return 1 }
            if skip("-") { return -1 }
            return nil
        }
    }
}
