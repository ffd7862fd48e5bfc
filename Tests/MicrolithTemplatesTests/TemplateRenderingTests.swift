import Testing

@testable import MicrolithTemplates

/// `text` rendered from `value` as the only template of a library (plus `partials`).
private func render(_ text: String, _ value: TemplateValue, partials: [String: String] = [:]) throws -> String {
    var sources = partials
    sources["main"] = text
    let library = try TemplateLibrary(sources: sources)
    return String(decoding: try library.render(value: value, template: "main"), as: UTF8.self)
}

@Suite struct TemplateVariableTests {
    @Test func variablesAreEscapedUnlessTripleOrAmpersand() throws {
        let value: TemplateValue = ["v": "a & b < c > d \" e ' f"]
        #expect(try render("{{v}}", value) == "a &amp; b &lt; c &gt; d &quot; e &#39; f")
        #expect(try render("{{{v}}}", value) == "a & b < c > d \" e ' f")
        #expect(try render("{{& v}}", value) == "a & b < c > d \" e ' f")
        #expect(try render("[{{ v }}]", ["v": "plain"]) == "[plain]", "blanks inside the tag are not part of the name")
    }

    @Test func escapingKeepsMultibyteTextWhole() throws {
        #expect(try render("{{v}}", ["v": "crème <brûlée> ☕️"]) == "crème &lt;brûlée&gt; ☕️")
        #expect(try render("{{v}}", ["v": "\u{E000}7\u{E001}"]) == "\u{E000}7\u{E001}", "live-slot markers pass through")
    }

    @Test func htmlTextEscapesAsAVariableTagDoes() throws {
        for text in ["a & b < c > d \" e ' f", "crème <brûlée> ☕️", "plain", "", "&&<<", "'"] {
            #expect(HTMLText.escaped(text) == (try render("{{v}}", ["v": .string(text)])), "\(text)")
        }
        #expect(HTMLText.escaped("p<1>") == "p&lt;1&gt;")
    }

    @Test func numbersBooleansAndNothing() throws {
        let value: TemplateValue = ["i": 42, "neg": -7, "d": 4.0, "half": 0.5, "t": true, "f": false, "n": nil, "l": [1, 2], "o": ["a": 1]]
        #expect(try render("{{i}} {{neg}} {{d}} {{half}} {{t}} {{f}}", value) == "42 -7 4.0 0.5 true false")
        #expect(try render("[{{n}}][{{l}}][{{o}}][{{missing}}][{{o.missing}}]", value) == "[][][][][]")
    }

    @Test func dottedNamesAndTheImplicitIterator() throws {
        let value: TemplateValue = ["a": ["b": ["c": "deep"]], "s": "top"]
        #expect(try render("{{a.b.c}}", value) == "deep")
        #expect(try render("{{a.x.c}}|{{s.length}}", value) == "|", "a dotted name stops where a member is missing")
        #expect(try render("{{#s}}<{{.}}>{{/s}}", value) == "<top>")
        #expect(try render("{{#a.b}}{{c}}{{/a.b}}", value) == "deep")
    }

    @Test func namesAreLookedUpDownTheContext() throws {
        let value: TemplateValue = ["name": "outer", "inner": ["other": 1], "list": [["name": "first"], ["x": 2]]]
        #expect(try render("{{#inner}}{{name}}/{{other}}{{/inner}}", value) == "outer/1")
        #expect(try render("{{#list}}{{name}},{{/list}}", value) == "first,outer,", "an item without the name finds the parent's")
    }
}

@Suite struct TemplateSectionTests {
    @Test func sectionsRenderByWhatTheyName() throws {
        let value: TemplateValue = [
            "yes": true, "no": false, "nothing": nil, "empty": [], "items": ["a", "b", "c"], "object": ["k": "v"], "zero": 0, "blank": "",
        ]
        #expect(try render("{{#yes}}Y{{/yes}}{{#no}}N{{/no}}{{#nothing}}Z{{/nothing}}{{#empty}}E{{/empty}}{{#missing}}M{{/missing}}", value) == "Y")
        #expect(try render("{{#items}}[{{.}}]{{/items}}", value) == "[a][b][c]")
        #expect(try render("{{#object}}{{k}}{{/object}}", value) == "v")
        #expect(try render("{{#zero}}0 is shown{{/zero}}|{{#blank}}'' is shown{{/blank}}", value) == "0 is shown|'' is shown")
        #expect(try render("{{#yes}}{{object.k}}{{/yes}}", value) == "v", "true renders once with the same context")
    }

    @Test func invertedSectionsRenderExactlyWhenSectionsDoNot() throws {
        let value: TemplateValue = ["yes": true, "no": false, "nothing": nil, "empty": [], "items": ["a"], "object": [:]]
        let text =
            "{{^yes}}1{{/yes}}{{^no}}2{{/no}}{{^nothing}}3{{/nothing}}{{^empty}}4{{/empty}}{{^items}}5{{/items}}{{^object}}6{{/object}}{{^missing}}7{{/missing}}"
        #expect(try render(text, value) == "2347")
    }

    @Test func nestedSectionsOverLists() throws {
        let value: TemplateValue = ["rows": [["cells": [1, 2]], ["cells": []], ["cells": [3]]]]
        #expect(try render("{{#rows}}<{{#cells}}{{.}}{{/cells}}{{^cells}}-{{/cells}}>{{/rows}}", value) == "<12><-><3>")
    }
}

@Suite struct TemplateWhitespaceTests {
    @Test func standaloneTagsTakeTheirLine() throws {
        let text = "<ul>\n  {{#items}}\n  <li>{{.}}</li>\n  {{/items}}\n</ul>\n"
        #expect(try render(text, ["items": ["a", "b"]]) == "<ul>\n  <li>a</li>\n  <li>b</li>\n</ul>\n")
        #expect(try render(text, ["items": []]) == "<ul>\n</ul>\n")
    }

    @Test func standaloneWithCarriageReturnsAndAtTheEnd() throws {
        #expect(try render("a\r\n{{#t}}\r\nb\r\n{{/t}}\r\nc", ["t": true]) == "a\r\nb\r\nc")
        #expect(try render("a\n{{! the end }}", [:]) == "a\n", "a standalone tag on the last line needs no line break")
        #expect(try render("a\n  {{^t}}x{{/t}}  \nb", ["t": true]) == "a\n    \nb", "two tags on a line are not standalone")
    }

    @Test func tagsWithTextBesideThemKeepTheLine() throws {
        #expect(try render(" x {{#t}}y{{/t}} z\n", ["t": true]) == " x y z\n")
        #expect(try render("{{v}}\n", ["v": "w"]) == "w\n", "variables are never standalone")
    }

    @Test func commentsRenderNothing() throws {
        #expect(try render("a{{! one }}b", [:]) == "ab")
        #expect(try render("a\n{{!\nseveral\nlines\n}}\nb", [:]) == "a\nb")
    }
}

@Suite struct TemplatePartialTests {
    @Test func partialsShareTheContext() throws {
        let partials = ["item": "<li>{{name}}{{#tags}} #{{.}}{{/tags}}</li>\n", "header": "<h1>{{title}}</h1>\n"]
        let text = "{{> header}}\n<ul>\n{{#items}}\n{{> item}}\n{{/items}}\n</ul>\n"
        let value: TemplateValue = ["title": "T", "items": [["name": "a", "tags": ["x"]], ["name": "b"]]]
        #expect(try render(text, value, partials: partials) == "<h1>T</h1>\n<ul>\n<li>a #x</li>\n<li>b</li>\n</ul>\n")
    }

    @Test func aStandalonePartialIsIndentedLikeItsTag() throws {
        let partials = ["lines": "one\ntwo\n"]
        #expect(try render("<div>\n    {{> lines}}\n</div>\n", [:], partials: partials) == "<div>\n    one\n    two\n</div>\n")
        #expect(try render("<p>{{> lines}}</p>", [:], partials: partials) == "<p>one\ntwo\n</p>", "inline partials are not indented")
    }

    @Test func onlyThePartialsOwnLinesAreIndentedNotLineBreaksFromTheView() throws {
        let partials = ["note": "<p>\n{{text}}\n{{{raw}}}</p>\n", "outer": "<div>\n  {{> note}}\n</div>\n", "empty": "{{nothing}}"]
        let value: TemplateValue = ["text": "a\nb", "raw": "c\nd"]
        #expect(
            try render("  {{> note}}\n", value, partials: partials) == "  <p>\n  a\nb\n  c\nd</p>\n",
            "a line of the partial that starts with a tag gets the indentation; the value's own line breaks do not")
        #expect(
            try render("<main>\n  {{> outer}}\n</main>\n", value, partials: partials)
                == "<main>\n  <div>\n    <p>\n    a\nb\n    c\nd</p>\n  </div>\n</main>\n",
            "nested standalone partials add their indentation up")
        #expect(try render("x\n  {{> empty}}\ny", value, partials: partials) == "x\ny", "a partial that renders nothing leaves no indentation")
        #expect(
            try render("  {{> note}}\n{{text}}\n", value, partials: partials) == "  <p>\n  a\nb\n  c\nd</p>\na\nb\n",
            "the indentation ends with the partial")
    }

    @Test func aMissingPartialStopsTheLibrary() throws {
        let error = #expect(throws: TemplateError.self) { try TemplateLibrary(sources: ["page": "{{> headr}}", "header": "h"]) }
        #expect(error?.description == "template page: includes partial 'headr', which is not a template here (header, page)")
    }

    @Test func aPartialThatIncludesItselfEndsWithAnError() throws {
        let library = try TemplateLibrary(sources: ["loop": "x{{> loop}}"])
        let error = #expect(throws: TemplateError.self) { try library.render(value: [:], template: "loop") }
        #expect(error?.message.contains("partials nest deeper than 64 levels") == true)
    }

    @Test func anUnknownTemplateIsNamed() throws {
        let library = try TemplateLibrary(sources: ["a": "", "b": ""])
        let error = #expect(throws: TemplateError.self) { try library.render(value: [:], template: "c") }
        #expect(error?.description == "there is no template named 'c' (a, b)")
        #expect(library.names == ["a", "b"])
        #expect(library.contains("a") && !library.contains("c"))
    }
}

@Suite struct TemplateSyntaxErrorTests {
    /// The error `text` gives, as its description.
    private func problem(_ text: String) -> String? {
        #expect(throws: TemplateError.self) { try Template(text, name: "t") }?.description
    }

    @Test func everySyntaxErrorNamesTheTemplateAndLine() {
        #expect(problem("a\nb {{name") == "template t, line 2: tag '{{' is never closed with '}}'")
        #expect(problem("{{{name}}") == "template t, line 1: tag '{{{' is never closed with '}}}'")
        #expect(problem("x\n\n{{#open}}\ny") == "template t, line 3: section 'open' is never closed with {{/open}}")
        #expect(
            problem("{{#a}}\n{{#b}}\n{{/a}}")
                == "template t, line 3: {{/a}} closes section 'b' (opened on line 2); expected {{/b}}")
        #expect(problem("{{/a}}") == "template t, line 1: {{/a}} closes a section that was never opened")
        #expect(problem("{{}}") == "template t, line 1: a tag needs a name, got an empty one")
        #expect(problem("{{#}}{{/}}") == "template t, line 1: a tag needs a name, got an empty one")
        #expect(problem("{{a b}}") == "template t, line 1: 'a b' is not a name (names have no spaces or braces)")
        #expect(problem("{{a..b}}") == "template t, line 1: 'a..b' is not a name: dots go between names (a.b), not at either end or twice")
        #expect(problem("{{.a}}") == "template t, line 1: '.a' is not a name: dots go between names (a.b), not at either end or twice")
        #expect(problem("{{> }}") == "template t, line 1: a partial tag needs one name, got '{{>}}'")
        #expect(problem("{{=<% %>=}}") == "template t, line 1: changing the delimiters ({{=…=}}) is not supported")
        let sigilFirst = "goes right after '{{', with no space before it"
        #expect(problem("{{ #items }}{{/items}}") == "template t, line 1: '#items' is not a name: a tag's '#' \(sigilFirst)")
        #expect(problem("x\n{{ >header}}") == "template t, line 2: '>header' is not a name: a tag's '>' \(sigilFirst)")
        #expect(problem("{{& !x}}") == "template t, line 1: '!x' is not a name: a tag's '!' \(sigilFirst)")
        #expect(problem("{{$block}}{{/block}}") == "template t, line 1: blocks and parent templates ({{$…}}, {{<…}}) are not supported")
    }

    @Test func nestingIsBounded() throws {
        let deep = String(repeating: "{{#a}}", count: Template.maximumNesting + 1)
        #expect(problem(deep)?.contains("sections nest deeper than 100 levels") == true)
        let fine = String(repeating: "{{#a}}", count: Template.maximumNesting) + String(repeating: "{{/a}}", count: Template.maximumNesting)
        _ = try Template(fine, name: "t")
    }

    @Test func textWithoutTagsAndLoneBracesIsText() throws {
        #expect(try render("plain } { text }}", [:]) == "plain } { text }}")
        #expect(try render("", [:]) == "")
    }
}
