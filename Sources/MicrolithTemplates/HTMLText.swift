/// Text made safe to write into HTML, as a template's `{{name}}` tag writes it.
///
/// `&`, `<`, `>`, `"` and `'` become `&amp;`, `&lt;`, `&gt;`, `&quot;` and `&#39;`, so the text can
/// stand between tags and inside a quoted attribute value. Application code that builds a
/// fragment of HTML by hand (a live slot's text, for example) escapes what it puts in with
/// ``escaped(_:)``.
public enum HTMLText {
    /// `text` with the five characters escaped; `text` itself when it holds none of them.
    public static func escaped(_ text: String) -> String {
        guard text.utf8.contains(where: needsEscaping) else { return text }
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count + 16)
        append(text, escapedTo: &out)
        return String(decoding: out, as: UTF8.self)
    }

    static func needsEscaping(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "&"), UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "\""), UInt8(ascii: "'"): return true
        default: return false
        }
    }

    /// Appends `text` to `out`, escaped.
    static func append(_ text: String, escapedTo out: inout [UInt8]) {
        var text = text
        text.withUTF8 { bytes in
            var run = 0
            for (i, b) in bytes.enumerated() {
                let replacement: StaticString
                switch b {
                case UInt8(ascii: "&"): replacement = "&amp;"
                case UInt8(ascii: "<"): replacement = "&lt;"
                case UInt8(ascii: ">"): replacement = "&gt;"
                case UInt8(ascii: "\""): replacement = "&quot;"
                case UInt8(ascii: "'"): replacement = "&#39;"
                default: continue
                }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[run..<i]))
                out.append(contentsOf: UnsafeBufferPointer(start: replacement.utf8Start, count: replacement.utf8CodeUnitCount))
                run = i + 1
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[run...]))
        }
    }
}
