/// The rules of subject names, checked before anything is sent: a server that reads a bad
/// subject answers `-ERR` and may close the connection, taking every subscription with it.
public enum NATSSubject {
    /// Why `subject` is not one a client may publish to (`wildcards: false`) or subscribe to
    /// (`wildcards: true`), or `nil`.
    ///
    /// A subject is tokens separated by `.`, none empty, with no spaces or control characters;
    /// in a subscription a token may be `*` (any one token), and the last may be `>` (one or
    /// more tokens).
    public static func problem(_ subject: String, wildcards: Bool) -> String? {
        // Every publish asks: one pass over the bytes finds a good subject; a bad one is
        // described by the slower code.
        if isWellFormed(subject, wildcards: wildcards) { return nil }
        return describe(subject, wildcards: wildcards)
    }

    /// What is wrong with `subject`, token by token (`nil`: nothing).
    static func describe(_ subject: String, wildcards: Bool) -> String? {
        if subject.isEmpty { return "a subject must not be empty" }
        if let bad = subject.utf8.first(where: { $0 <= 32 || $0 == 127 }) {
            return "subject '\(printable(subject))' holds \(bad == 32 ? "a space" : "control character \(bad)")"
        }
        // Split on the byte '.', as the server does (a '.' followed by a combining mark is still a dot).
        let tokens = subject.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        if tokens.contains(where: \.isEmpty) { return "subject '\(subject)' has an empty token (tokens are separated by single dots)" }
        for (i, token) in tokens.enumerated() where token.utf8.elementsEqual("*".utf8) || token.utf8.elementsEqual(">".utf8) {
            if !wildcards { return "subject '\(subject)' holds the wildcard '\(token)': messages are published to exact subjects" }
            if token.utf8.elementsEqual(">".utf8) && i != tokens.count - 1 { return "subject '\(subject)': '>' may only be the last token" }
        }
        return nil
    }

    /// Whether `subject` is a good subject: a pass over its bytes for spaces, control characters
    /// and empty tokens, then the wildcards.
    static func isWellFormed(_ subject: String, wildcards: Bool) -> Bool {
        var previous = UInt8(ascii: ".")
        var any = false
        for byte in subject.utf8 {
            if byte <= 32 || byte == 127 { return false }
            if byte == UInt8(ascii: ".") && previous == UInt8(ascii: ".") { return false }
            previous = byte
            any = true
        }
        guard any && previous != UInt8(ascii: ".") else { return false }
        return wildcards ? hasWellPlacedWildcards(subject) : !hasWildcardToken(subject)
    }

    /// Whether a token of `subject` is `*` or `>`.
    private static func hasWildcardToken(_ subject: String) -> Bool {
        var previous: UInt8 = UInt8(ascii: ".")
        var candidate = false
        for byte in subject.utf8 {
            if byte == UInt8(ascii: ".") {
                if candidate { return true }
            } else {
                candidate = previous == UInt8(ascii: ".") && (byte == UInt8(ascii: "*") || byte == UInt8(ascii: ">"))
            }
            previous = byte
        }
        return candidate
    }

    /// Whether a `>` token of `subject`, if any, is its last.
    private static func hasWellPlacedWildcards(_ subject: String) -> Bool {
        guard subject.utf8.contains(UInt8(ascii: ">")) else { return true }
        let tokens = subject.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        for (i, token) in tokens.enumerated() where token.count == 1 && token.first == UInt8(ascii: ">") && i != tokens.count - 1 {
            return false
        }
        return true
    }

    /// Why `name` cannot be one token of a subject (a stream, consumer, node or table name put
    /// into one), or `nil`: it must not be empty or hold `.`, `*`, `>`, spaces or control characters.
    public static func tokenProblem(_ name: String) -> String? {
        if name.isEmpty { return "it is empty" }
        if name.contains(where: { $0 == "." || $0 == "*" || $0 == ">" || $0.isWhitespace })
            || name.unicodeScalars.contains(where: { $0.value < 32 || $0.value == 127 })
        {
            return "it holds '.', '*', '>', a space or a control character"
        }
        return nil
    }

    /// Why `name` cannot be a queue group or a subscription id, or `nil`.
    static func nameProblem(_ name: String, _ what: String) -> String? {
        if name.isEmpty { return "a \(what) must not be empty" }
        if name.utf8.contains(where: { $0 <= 32 || $0 == 127 }) { return "\(what) '\(printable(name))' holds a space or a control character" }
        return nil
    }

    static func printable(_ text: String) -> String {
        String(text.unicodeScalars.map { $0.value < 32 || $0.value == 127 ? "?" : Character($0) })
    }
}
