/// One Mustache template, parsed once; rendered many times through a ``TemplateLibrary``.
///
/// The syntax is Mustache's, without lambdas, delimiter changes or blocks: `{{name}}` (HTML
/// escaped), `{{{name}}}` and `{{& name}}` (as is), `{{#name}}…{{/name}}` sections,
/// `{{^name}}…{{/name}}` inverted sections, `{{> partial}}`, `{{! comment}}`, dotted names
/// (`{{product.name}}`) and `{{.}}` for the value on top of the context. A section, inverted
/// section, partial or comment tag alone on its line takes the whole line with it, as the
/// Mustache specification says; a standalone partial is indented as its tag was.
///
/// Everything that can be wrong with a template's text is found here, when it is parsed, with
/// the line: an unclosed tag or section, a close tag that names another section, an empty or
/// malformed name, an unsupported tag.
public struct Template: Sendable {
    /// The name the template is known by in its library (and named in errors).
    public let name: String
    let nodes: [TemplateNode]
    /// The partials the template includes, at any depth of its sections.
    public let partials: Set<String>

    /// The deepest section nesting a template may have.
    public static let maximumNesting = 100

    /// Parses `text`; throws a ``TemplateError`` naming `name` and the line of the first problem.
    public init(_ text: String, name: String) throws(TemplateError) {
        var parser = TemplateParser(source: Array(text.utf8), name: name)
        self.nodes = try parser.parse()
        self.name = name
        self.partials = parser.partials
    }
}

/// A piece of a parsed template.
indirect enum TemplateNode: Sendable {
    case text([UInt8])
    case variable(TemplatePath, escaped: Bool)
    case section(TemplatePath, [TemplateNode], inverted: Bool)
    /// A partial, and the indentation of its standalone tag (empty when it was not standalone).
    case partial(String, indentation: [UInt8])
}

/// A name as a tag gives it: `a.b.c` is `["a", "b", "c"]`; `.` is the empty path (the value on
/// top of the context).
struct TemplatePath: Sendable, Equatable {
    let names: [String]
}

/// Reads template text into nodes, keeping track of the line for errors.
struct TemplateParser {
    private let source: [UInt8]
    private let name: String
    private var textStart = 0
    private var frames: [Frame] = [Frame(path: nil, nameText: "", inverted: false, offset: 0)]
    private(set) var partials: Set<String> = []

    private struct Frame {
        let path: TemplatePath?
        let nameText: String
        let inverted: Bool
        /// Where its open tag starts (for the line in errors).
        let offset: Int
        var nodes: [TemplateNode] = []
    }

    init(source: [UInt8], name: String) {
        self.source = source
        self.name = name
    }

    private static let open: (UInt8, UInt8) = (UInt8(ascii: "{"), UInt8(ascii: "{"))
    private static let brace = UInt8(ascii: "}")
    private static let newline = UInt8(ascii: "\n")
    private static let carriageReturn = UInt8(ascii: "\r")

    private static func isBlank(_ b: UInt8) -> Bool { b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") }

    mutating func parse() throws(TemplateError) -> [TemplateNode] {
        var position = 0
        let count = source.count
        while let tagStart = find(from: position) {
            var contentStart = tagStart + 2
            let sigil: UInt8? = contentStart < count ? source[contentStart] : nil
            let triple = sigil == UInt8(ascii: "{")
            if triple { contentStart += 1 }
            guard let (contentEnd, tagEnd) = close(from: contentStart, triple: triple) else {
                throw error(triple ? "tag '{{{' is never closed with '}}}'" : "tag '{{' is never closed with '}}'", at: tagStart)
            }
            // A section, inverted section, close, partial or comment tag alone on its line takes
            // the line (its indentation and its line break) with it.
            var textEnd = tagStart
            var resume = tagEnd
            var indentation: [UInt8] = []
            if let sigil, [UInt8(ascii: "#"), UInt8(ascii: "^"), UInt8(ascii: "/"), UInt8(ascii: ">"), UInt8(ascii: "!")].contains(sigil),
                let (lineStart, next) = standaloneLine(tagStart: tagStart, tagEnd: tagEnd)
            {
                textEnd = lineStart
                resume = next
                indentation = Array(source[lineStart..<tagStart])
            }
            appendText(textStart..<textEnd)
            try tag(sigil: triple ? nil : sigil, triple: triple, content: contentStart..<contentEnd, at: tagStart, indentation: indentation)
            position = resume
            textStart = resume
        }
        appendText(textStart..<count)
        if let open = frames.last, frames.count > 1 {
            throw error("section '\(open.nameText)' is never closed with {{/\(open.nameText)}}", at: open.offset)
        }
        return frames[0].nodes
    }

    /// The next `{{` at or after `from`.
    private func find(from: Int) -> Int? {
        var i = from
        while i + 1 < source.count {
            if source[i] == Self.open.0, source[i + 1] == Self.open.1 { return i }
            i += 1
        }
        return nil
    }

    /// Where the tag's content ends and the tag itself ends (after `}}`, or `}}}` for a triple).
    private func close(from: Int, triple: Bool) -> (Int, Int)? {
        let width = triple ? 3 : 2
        var i = from
        while i + width <= source.count {
            if source[i] == Self.brace, source[i + 1] == Self.brace, !triple || source[i + 2] == Self.brace { return (i, i + width) }
            i += 1
        }
        return nil
    }

    /// When only blanks stand between the line's start and the tag and between the tag and the
    /// line's end: where the line starts, and where the next one does.
    private func standaloneLine(tagStart: Int, tagEnd: Int) -> (Int, Int)? {
        var lineStart = tagStart
        while lineStart > 0, Self.isBlank(source[lineStart - 1]) { lineStart -= 1 }
        guard lineStart == 0 || source[lineStart - 1] == Self.newline else { return nil }
        var end = tagEnd
        while end < source.count, Self.isBlank(source[end]) { end += 1 }
        if end == source.count { return (lineStart, end) }
        if source[end] == Self.newline { return (lineStart, end + 1) }
        if source[end] == Self.carriageReturn, end + 1 < source.count, source[end + 1] == Self.newline { return (lineStart, end + 2) }
        return nil
    }

    private mutating func appendText(_ range: Range<Int>) {
        guard !range.isEmpty else { return }
        frames[frames.count - 1].nodes.append(.text(Array(source[range])))
    }

    private mutating func tag(
        sigil: UInt8?, triple: Bool, content: Range<Int>, at tagStart: Int, indentation: [UInt8]
    )
        throws(TemplateError)
    {
        let body = content.lowerBound + (triple || !Self.hasSigil(sigil) ? 0 : 1)
        let text = String(decoding: source[body..<content.upperBound], as: UTF8.self).trimmingBlanks
        if triple {
            try frames[frames.count - 1].nodes.append(.variable(path(text, at: tagStart), escaped: false))
            return
        }
        switch sigil {
        case UInt8(ascii: "!"):
            return
        case UInt8(ascii: "&"):
            try frames[frames.count - 1].nodes.append(.variable(path(text, at: tagStart), escaped: false))
        case UInt8(ascii: "#"), UInt8(ascii: "^"):
            guard frames.count <= Template.maximumNesting else {
                throw error("sections nest deeper than \(Template.maximumNesting) levels", at: tagStart)
            }
            let p = try path(text, at: tagStart)
            frames.append(Frame(path: p, nameText: text, inverted: sigil == UInt8(ascii: "^"), offset: tagStart))
        case UInt8(ascii: "/"):
            guard frames.count > 1, let open = frames.last else {
                throw error("{{/\(text)}} closes a section that was never opened", at: tagStart)
            }
            guard open.nameText == text else {
                throw error(
                    "{{/\(text)}} closes section '\(open.nameText)' (opened on line \(line(of: open.offset))); expected {{/\(open.nameText)}}",
                    at: tagStart)
            }
            frames.removeLast()
            frames[frames.count - 1].nodes.append(.section(open.path!, open.nodes, inverted: open.inverted))
        case UInt8(ascii: ">"):
            guard !text.isEmpty, !text.utf8.contains(where: Self.isBlank) else {
                throw error("a partial tag needs one name, got '{{>\(text)}}'", at: tagStart)
            }
            partials.insert(text)
            frames[frames.count - 1].nodes.append(.partial(text, indentation: indentation))
        case UInt8(ascii: "="):
            throw error("changing the delimiters ({{=…=}}) is not supported", at: tagStart)
        case UInt8(ascii: "$"), UInt8(ascii: "<"):
            throw error("blocks and parent templates ({{$…}}, {{<…}}) are not supported", at: tagStart)
        default:
            try frames[frames.count - 1].nodes.append(.variable(path(text, at: tagStart), escaped: true))
        }
    }

    private static func hasSigil(_ sigil: UInt8?) -> Bool {
        guard let sigil else { return false }
        return "#^/>!&=$<".utf8.contains(sigil)
    }

    /// `text` as a path: `.`, or names separated by single dots.
    private func path(_ text: String, at tagStart: Int) throws(TemplateError) -> TemplatePath {
        if text == "." { return TemplatePath(names: []) }
        guard !text.isEmpty else { throw error("a tag needs a name, got an empty one", at: tagStart) }
        if let first = text.utf8.first, Self.hasSigil(first) || first == UInt8(ascii: "{") {
            throw error(
                "'\(text)' is not a name: a tag's '\(Character(Unicode.Scalar(first)))' goes right after '{{', with no space before it",
                at: tagStart)
        }
        guard !text.utf8.contains(where: { Self.isBlank($0) || $0 == Self.newline || $0 == UInt8(ascii: "{") || $0 == Self.brace }) else {
            throw error("'\(text)' is not a name (names have no spaces or braces)", at: tagStart)
        }
        let names = text.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard !names.contains(where: \.isEmpty) else {
            throw error("'\(text)' is not a name: dots go between names (a.b), not at either end or twice", at: tagStart)
        }
        return TemplatePath(names: names)
    }

    private func line(of offset: Int) -> Int {
        1 + source[..<offset].reduce(0) { $0 + ($1 == Self.newline ? 1 : 0) }
    }

    private func error(_ message: String, at offset: Int) -> TemplateError {
        TemplateError(message, template: name, line: line(of: offset))
    }
}

extension String {
    /// The string without leading and trailing spaces and tabs.
    fileprivate var trimmingBlanks: String {
        let bytes = Array(utf8)
        var start = 0
        var end = bytes.count
        while start < end, bytes[start] == UInt8(ascii: " ") || bytes[start] == UInt8(ascii: "\t") { start += 1 }
        while end > start, bytes[end - 1] == UInt8(ascii: " ") || bytes[end - 1] == UInt8(ascii: "\t") { end -= 1 }
        return start == 0 && end == bytes.count ? self : String(decoding: bytes[start..<end], as: UTF8.self)
    }
}
