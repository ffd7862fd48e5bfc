import Foundation
import Testing

@testable import MicrolithTemplates

@Suite struct TemplateEncoderTests {
    struct Inner: Encodable {
        var n: Int64
        var ratio: Float
        var small: UInt8
        var huge: UInt64
        var tags: [String]
        var matrix: [[Int]]
    }

    enum Marker: Encodable {
        case value(Int)
        case live(String)

        func encode(to encoder: any Encoder) throws {
            var c = encoder.singleValueContainer()
            switch self {
            case .value(let v): try c.encode(v)
            case .live(let m): try c.encode(m)
            }
        }
    }

    struct Outer: Encodable {
        var name: String
        var missing: String?
        var present: String?
        var flag: Bool
        var inner: Inner
        var shown: Marker
        var live: Marker
        var optionals: [Int?]

        enum CodingKeys: String, CodingKey { case name, missing, present, explicitNull, flag, inner, shown, live, optionals }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(name, forKey: .name)
            try c.encodeIfPresent(missing, forKey: .missing)
            try c.encodeIfPresent(present, forKey: .present)
            try c.encodeNil(forKey: .explicitNull)
            try c.encode(flag, forKey: .flag)
            try c.encode(inner, forKey: .inner)
            try c.encode(shown, forKey: .shown)
            try c.encode(live, forKey: .live)
            try c.encode(optionals, forKey: .optionals)
        }
    }

    @Test func viewsBecomeWhatTemplatesRead() throws {
        let view = Outer(
            name: "mug", missing: nil, present: "here", flag: true,
            inner: Inner(n: 7, ratio: 0.5, small: 255, huge: .max, tags: ["a", "b"], matrix: [[1], []]), shown: .value(3),
            live: .live("\u{E000}0\u{E001}"), optionals: [1, nil])
        let value = try TemplateEncoder.encode(view)
        let expected: TemplateValue = [
            "name": "mug", "present": "here", "explicitNull": nil, "flag": true,
            "inner": [
                "n": 7, "ratio": 0.5, "small": 255, "huge": "18446744073709551615", "tags": ["a", "b"], "matrix": [[1], []],
            ],
            "shown": 3, "live": "\u{E000}0\u{E001}", "optionals": [1, nil],
        ]
        #expect(value == expected)
        #expect(value["missing"] == nil, "an absent optional stays absent, so a tag looks further down the context")
    }

    @Test func synthesizedCodableViewsRenderAsTheirFieldsSay() throws {
        struct Card: Encodable {
            var id: String
            var price: String?
            var stock: Int?
        }
        struct Page: Encodable {
            var title: String
            var cards: [Card]
            var price: String
        }
        let library = try TemplateLibrary(sources: ["p": "{{title}}:{{#cards}} {{id}}={{price}}/{{stock}}{{^stock}}?{{/stock}}{{/cards}}"])
        let page = Page(title: "T", cards: [Card(id: "a", price: "$1", stock: 2), Card(id: "b", price: nil, stock: nil)], price: "page price")
        let html = String(decoding: try library.render(page, template: "p"), as: UTF8.self)
        #expect(html == "T: a=$1/2 b=page price/?", "b has no price of its own, so the page's is found further down")
    }

    @Test func numbersAndFoundationValuesRenderAsAPageShowsThem() throws {
        struct View: Encodable {
            var float: Float = 0.1
            var floats: [Float] = [1.5, 0.3]
            var big: UInt64 = UInt64(Int.max) + 1
            var price = Decimal(string: "12.50")!
            var prices = [Decimal(string: "0.1")!, Decimal(string: "-3")!]
            var link = URL(string: "https://example.com/a?b=1&c=2")!
            var maybeLink: URL? = URL(string: "/p/1")
        }
        let library = try TemplateLibrary(sources: [
            "v": "{{float}} {{#floats}}{{.}},{{/floats}} {{big}} {{price}} {{#prices}}{{.}},{{/prices}} {{link}} {{maybeLink}}"
        ])
        let html = String(decoding: try library.render(View(), template: "v"), as: UTF8.self)
        #expect(html == "0.1 1.5,0.3, 9223372036854775808 12.5 0.1,-3, https://example.com/a?b=1&amp;c=2 /p/1")
        #expect(try TemplateEncoder.encode(Float(0.1)) == 0.1)
        #expect(try TemplateEncoder.encode(UInt64.max) == "18446744073709551615")
        #expect(try TemplateEncoder.encode(UInt(Int.max)) == .int(Int.max))
    }

    @Test func aCustomEncodingSeesItsCodingPath() throws {
        struct Where: Encodable {
            func encode(to encoder: any Encoder) throws {
                var c = encoder.singleValueContainer()
                try c.encode(encoder.codingPath.map(\.stringValue).joined(separator: "."))
            }
        }
        struct Inner: Encodable {
            var here = Where()
            var list = [Where()]
        }
        struct Outer: Encodable {
            var top = Where()
            var inner = Inner()
            var maybe: Inner? = Inner()
        }
        let value = try TemplateEncoder.encode(Outer())
        let inner: TemplateValue = ["here": "inner.here", "list": ["inner.list"]]
        #expect(value["top"] == "top")
        #expect(value["inner"] == inner)
        #expect(value["maybe"] == ["here": "maybe.here", "list": ["maybe.list"]])
    }

    @Test func nestedContainersFilledLaterAndKeysWrittenTwice() throws {
        struct Hand: Encodable {
            enum Keys: String, CodingKey { case a, b, c, d, e }
            enum Inner: String, CodingKey { case x, y }
            func encode(to encoder: any Encoder) throws {
                var c = encoder.container(keyedBy: Keys.self)
                var nested = c.nestedContainer(keyedBy: Inner.self, forKey: .a)
                var items = c.nestedUnkeyedContainer(forKey: .b)
                try c.encode("first", forKey: .c)
                try c.encode("second", forKey: .c)
                // Filled after other members were written: still read when the view is.
                try nested.encode(1, forKey: .x)
                try items.encode("one")
                var row = items.nestedContainer(keyedBy: Inner.self)
                try items.encode("three")
                try row.encode(true, forKey: .y)
                var again = c.nestedContainer(keyedBy: Inner.self, forKey: .d)
                try again.encode(1, forKey: .x)
                try c.encode("replaced", forKey: .d)
                try c.encode("value", forKey: .e)
                var later = c.nestedContainer(keyedBy: Inner.self, forKey: .e)
                try later.encode(2, forKey: .y)
                try nested.encode("late", forKey: .y)
            }
        }
        let value = try TemplateEncoder.encode(Hand())
        let expected: TemplateValue = [
            "a": ["x": 1, "y": "late"], "b": ["one", ["y": true], "three"], "c": "second", "d": "replaced", "e": ["y": 2],
        ]
        #expect(value == expected)
    }

    @Test func dictionariesAndTopLevelValues() throws {
        #expect(try TemplateEncoder.encode(["b": 2, "a": 1]) == ["a": 1, "b": 2])
        #expect(try TemplateEncoder.encode("text") == "text")
        #expect(try TemplateEncoder.encode([true, false]) == [true, false])
        #expect(try TemplateEncoder.encode(Optional<Int>.none) == .null)
    }
}

@Suite struct TemplateDirectoryTests {
    private func folder(_ files: [String: Data]) throws -> String {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("templates-\(UUID().uuidString)")
        for (path, data) in files {
            let url = root.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try data.write(to: url)
        }
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        return root.path
    }

    @Test func everyTemplateUnderTheDirectoryIsNamedByItsPath() throws {
        let dir = try folder([
            "page.mustache": Data("{{> parts/header}}body".utf8), "parts/header.mustache": Data("<h1>{{title}}</h1>".utf8),
            "notes.txt": Data("not a template {{".utf8),
        ])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let library = try TemplateLibrary(directory: dir)
        #expect(library.names == ["page", "parts/header"])
        #expect(String(decoding: try library.render(value: ["title": "Hi"], template: "page"), as: UTF8.self) == "<h1>Hi</h1>body")
    }

    @Test func badFilesAndFoldersAreNamed() throws {
        let missing = "/nonexistent-\(UUID().uuidString)"
        #expect(throws: TemplateError("no template directory at \(missing)")) { try TemplateLibrary(directory: missing) }
        let binary = try folder(["bad.mustache": Data([0xFF, 0xFE, 0x00])])
        defer { try? FileManager.default.removeItem(atPath: binary) }
        let error = #expect(throws: TemplateError.self) { try TemplateLibrary(directory: binary) }
        #expect(error?.message.hasSuffix("bad.mustache is not UTF-8 text") == true)
        let broken = try folder(["a.mustache": Data("line one\n{{#open}}".utf8)])
        defer { try? FileManager.default.removeItem(atPath: broken) }
        #expect(throws: TemplateError("section 'open' is never closed with {{/open}}", template: "a", line: 2)) {
            try TemplateLibrary(directory: broken)
        }
    }
}
