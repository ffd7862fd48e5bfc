import Foundation

/// A set of named templates that include each other as partials: what an app renders its HTML
/// pages with.
///
/// ```swift
/// let pages = try TemplateLibrary(directory: "app/templates")   // every *.mustache, parsed once
/// let html = try pages.render(view, template: "product")        // view: any Encodable
/// ```
///
/// Templates are parsed when the library is made, so a syntax error or a partial that does not
/// exist stops the app at start with the file and line, not a visitor at the first request.
/// Rendering reads a ``TemplateValue`` (``TemplateEncoder`` makes one from the view) with no
/// dynamic casts or reflection, straight into bytes.
///
/// A name is looked up as Mustache says: in the value on top of the context, then in each value
/// beneath it; `a.b` looks `a` up that way and `b` in it. A name found nowhere renders nothing.
/// A variable renders a string as it is (HTML-escaped unless the tag is `{{{…}}}` or `{{&…}}`:
/// `&`, `<`, `>`, `"` and `'`), a number in its shortest form, a boolean as `true` or `false`;
/// `null`, lists and objects render nothing.
public struct TemplateLibrary: Sendable {
    private let templates: [String: Template]

    /// How deep partials may include partials (a partial that includes itself stops here).
    public static let maximumPartialDepth = 64

    /// The library of `templates`; throws when one of them uses a partial that is not among them.
    public init(_ templates: [Template]) throws(TemplateError) {
        var byName: [String: Template] = [:]
        for t in templates {
            guard byName[t.name] == nil else { throw TemplateError("two templates are named '\(t.name)'") }
            byName[t.name] = t
        }
        for t in templates.sorted(by: { $0.name < $1.name }) {
            for partial in t.partials.sorted() where byName[partial] == nil {
                throw TemplateError(
                    "includes partial '\(partial)', which is not a template here (\(byName.keys.sorted().joined(separator: ", ")))",
                    template: t.name)
            }
        }
        self.templates = byName
    }

    /// The library of `sources` (name → template text), each parsed.
    public init(sources: [String: String]) throws(TemplateError) {
        var parsed: [Template] = []
        for (name, text) in sources.sorted(by: { $0.key < $1.key }) { parsed.append(try Template(text, name: name)) }
        try self.init(parsed)
    }

    /// Every `*.{fileExtension}` file under `directory`, named by its path below it without the
    /// extension (`product`, `emails/receipt`).
    ///
    /// Throws a ``TemplateError`` for a directory that cannot be read, a file that is not UTF-8,
    /// a syntax error (with the file and line) or a missing partial.
    public init(directory: String, fileExtension: String = "mustache") throws(TemplateError) {
        let root = URL(fileURLWithPath: directory, isDirectory: true).standardizedFileURL
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw TemplateError("no template directory at \(directory)")
        }
        guard let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil) else {
            throw TemplateError("the template directory \(directory) cannot be read")
        }
        var sources: [String: String] = [:]
        let prefix = root.path.hasSuffix("/") ? root.path : root.path + "/"
        for case let url as URL in walker where url.pathExtension == fileExtension {
            let path = url.standardizedFileURL.path
            guard path.hasPrefix(prefix) else { continue }
            let name = String(path.dropFirst(prefix.count).dropLast(fileExtension.count + 1))
            guard let data = FileManager.default.contents(atPath: path) else { throw TemplateError("\(path) cannot be read") }
            guard let text = String(data: data, encoding: .utf8) else { throw TemplateError("\(path) is not UTF-8 text") }
            sources[name] = text
        }
        try self.init(sources: sources)
    }

    /// The templates' names, sorted.
    public var names: [String] { templates.keys.sorted() }

    /// Whether there is a template named `name`.
    public func contains(_ name: String) -> Bool { templates[name] != nil }

    /// `template` rendered from `view` (encoded with ``TemplateEncoder``), as UTF-8 bytes.
    public func render(_ view: some Encodable, template: String) throws -> [UInt8] {
        try render(value: TemplateEncoder.encode(view), template: template)
    }

    /// `template` rendered from `value`, as UTF-8 bytes.
    public func render(value: TemplateValue, template name: String) throws(TemplateError) -> [UInt8] {
        guard let template = templates[name] else {
            throw TemplateError("there is no template named '\(name)' (\(names.joined(separator: ", ")))")
        }
        var renderer = TemplateRenderer(templates: templates, root: value)
        try renderer.render(template.nodes)
        return renderer.out
    }
}

/// One rendering: the output so far and the context stack.
struct TemplateRenderer {
    let templates: [String: Template]
    var out: [UInt8] = []
    var stack: [TemplateValue]
    var partialDepth = 0
    /// What goes before each line of the standalone partials being rendered (theirs, nested ones
    /// added up); empty outside them.
    var indentation: [UInt8] = []
    /// Whether the last byte a template wrote ended a line (so the next output gets ``indentation``).
    var atLineStart = false

    init(templates: [String: Template], root: TemplateValue) {
        self.templates = templates
        self.stack = [root]
        out.reserveCapacity(4096)
    }

    mutating func render(_ nodes: [TemplateNode]) throws(TemplateError) {
        for node in nodes {
            switch node {
            case .text(let bytes):
                if indentation.isEmpty {
                    out.append(contentsOf: bytes)
                } else {
                    appendIndented(bytes)
                }
            case .variable(let path, let escaped):
                if let value = lookup(path) {
                    if atLineStart, !indentation.isEmpty, value.rendersText {
                        out.append(contentsOf: indentation)
                        atLineStart = false
                    }
                    write(value, escaped: escaped)
                }
            case .section(let path, let body, let inverted):
                let value = lookup(path) ?? .null
                if inverted {
                    if value.isFalsey { try render(body) }
                    continue
                }
                switch value {
                case .null: break
                case .bool(let b): if b { try render(body) }
                case .list(let items):
                    for item in items {
                        stack.append(item)
                        try render(body)
                        stack.removeLast()
                    }
                default:
                    stack.append(value)
                    try render(body)
                    stack.removeLast()
                }
            case .partial(let name, let indentation):
                guard let partial = templates[name] else { throw TemplateError("there is no template named '\(name)'") }
                guard partialDepth < TemplateLibrary.maximumPartialDepth else {
                    throw TemplateError(
                        "partials nest deeper than \(TemplateLibrary.maximumPartialDepth) levels (does '\(name)' include itself?)",
                        template: name)
                }
                partialDepth += 1
                let enclosing = self.indentation
                if !indentation.isEmpty {
                    // A standalone partial: its tag's line, indentation included, was taken out, so
                    // its first line starts a line, and every line of its text gets the indentation.
                    self.indentation = enclosing + indentation
                    atLineStart = true
                }
                try render(partial.nodes)
                self.indentation = enclosing
                partialDepth -= 1
            }
        }
    }

    /// The value `path` names: its first name looked up from the top of the stack down, the
    /// rest inside what that found.
    private func lookup(_ path: TemplatePath) -> TemplateValue? {
        guard let first = path.names.first else { return stack.last }
        var i = stack.count - 1
        var found: TemplateValue?
        while i >= 0 {
            if case .object(let members) = stack[i], let v = members[first] {
                found = v
                break
            }
            i -= 1
        }
        guard var current = found else { return nil }
        for name in path.names.dropFirst() {
            guard case .object(let members) = current, let v = members[name] else { return nil }
            current = v
        }
        return current
    }

    private mutating func write(_ value: TemplateValue, escaped: Bool) {
        switch value {
        case .string(let s): append(s, escaped: escaped)
        case .int(let i): out.append(contentsOf: String(i).utf8)
        case .double(let d): out.append(contentsOf: "\(d)".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .null, .list, .object: break
        }
    }

    private mutating func append(_ s: String, escaped: Bool) {
        if escaped {
            HTMLText.append(s, escapedTo: &out)
        } else {
            out.append(contentsOf: s.utf8)
        }
    }

    /// Writes a template's own text, with ``indentation`` before each line it starts (text that
    /// comes from the view is written as it is, line breaks and all).
    private mutating func appendIndented(_ bytes: [UInt8]) {
        var start = 0
        while start < bytes.count {
            if atLineStart {
                out.append(contentsOf: indentation)
                atLineStart = false
            }
            var end = start
            while end < bytes.count, bytes[end] != UInt8(ascii: "\n") { end += 1 }
            if end < bytes.count {
                end += 1
                atLineStart = true
            }
            out.append(contentsOf: bytes[start..<end])
            start = end
        }
    }
}

extension TemplateValue {
    /// Whether a variable tag writes something for this value.
    fileprivate var rendersText: Bool {
        switch self {
        case .string(let s): return !s.isEmpty
        case .int, .double, .bool: return true
        case .null, .list, .object: return false
        }
    }
}
