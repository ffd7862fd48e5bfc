import MicrolithSchema

extension DateValue {
    /// The stored form (`YYYY-MM-DDTHH:MM:SS.mmmZ`) of a date a query compares with, or `nil`
    /// when `text` is neither a date in ``DateValue/Syntax/query`` syntax nor an integer number
    /// of milliseconds since 1970 (which may be negative), or names an instant outside years
    /// 0000...9999 (after applying its offset).
    static func normalize(queryText text: String) -> String? {
        guard let milliseconds = NumberText.integer(text) ?? parse(text, accepting: .query),
            (minimumMilliseconds...maximumMilliseconds).contains(milliseconds)
        else { return nil }
        return format(milliseconds)
    }
}
