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
        if subject.isEmpty { return "a subject must not be empty" }
        if let bad = subject.utf8.first(where: { $0 <= 32 || $0 == 127 }) {
            return "subject '\(printable(subject))' holds \(bad == 32 ? "a space" : "control character \(bad)")"
        }
        let tokens = subject.split(separator: ".", omittingEmptySubsequences: false)
        if tokens.contains(where: \.isEmpty) { return "subject '\(subject)' has an empty token (tokens are separated by single dots)" }
        for (i, token) in tokens.enumerated() where token == "*" || token == ">" {
            if !wildcards { return "subject '\(subject)' holds the wildcard '\(token)': messages are published to exact subjects" }
            if token == ">" && i != tokens.count - 1 { return "subject '\(subject)': '>' may only be the last token" }
        }
        return nil
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
