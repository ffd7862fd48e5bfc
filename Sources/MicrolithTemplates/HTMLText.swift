/// Text made safe to write into HTML, as a template's `{{name}}` tag writes it.
///
/// `&`, `<`, `>`, `"` and `'` become `&amp;`, `&lt;`, `&gt;`, `&quot;` and `&#39;`, so the text can
/// stand between tags and inside a quoted attribute value. Application code that builds a
/// fragment of HTML by hand (a live slot's text, for example) escapes what it puts in with
/// ``escaped(_:)``.
public enum HTMLText {
    /// `text` with the five characters escaped; `text` itself when it holds none of them.
    public static func escaped(_ text: String) -> String {
        guard text.utf8.contains(where: { replacement(for: $0) != nil }) else { return text }
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count + 16)
        append(text, escapedTo: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// The character reference `byte` is written as, or `nil` when it stands as it is.
    static func replacement(for byte: UInt8) -> StaticString? {
        switch byte {
        case UInt8(ascii: "&"): return "&amp;"
        case UInt8(ascii: "<"): return "&lt;"
        case UInt8(ascii: ">"): return "&gt;"
        case UInt8(ascii: "\""): return "&quot;"
        case UInt8(ascii: "'"): return "&#39;"
        default: return nil
        }
    }

    /// Appends `text` to `out`, escaped.
    static func append(_ text: String, escapedTo out: inout [UInt8]) {
        var text = text
        text.withUTF8 { bytes in
            var run = 0
            for (i, b) in bytes.enumerated() {
                guard let replacement = replacement(for: b) else { continue }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[run..<i]))
                out.append(contentsOf: UnsafeBufferPointer(start: replacement.utf8Start, count: replacement.utf8CodeUnitCount))
                run = i + 1
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[run...]))
        }
    }
}
