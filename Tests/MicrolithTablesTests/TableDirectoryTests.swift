import MicrolithStore
import MicrolithTables
import Testing

@Suite struct TableDirectoryTests {
    /// The selection `path` names, or the error's kind.
    static func read(_ directory: TableDirectory, _ path: String, query: Substring? = nil) -> Result<TableTarget, TableTargetError> {
        Result { () throws(TableTargetError) in try directory.target(path: path, query: query) }
    }

    @Test func urlPathsNameCollectionsRecordsAndPrefixes() throws {
        let store = try openTablesStore()
        defer { closeAndRemove(store) }
        let directory = TableDirectory(store: store)
        let cases: [(String, TableTarget.Selection)] = [
            ("/Todo", .collection),
            ("/Todo/", .collection),
            ("/Todo/a", .record(.string("a"))),
            ("/Todo/a/b", .record(.string("a/b"))),
            ("/Todo/a%2Fb", .record(.string("a/b"))),
            ("/Todo/a%20b%2Fc", .record(.string("a b/c"))),
            ("/Todo//x", .record(.string("/x"))),
            ("/Todo/%E2%9C%93", .record(.string("✓"))),
            ("/Todo/a/", .prefix("a/")),
            ("/Todo/room%201/floor/", .prefix("room 1/floor/")),
            ("/Counter/42", .record(.int(42))),
            ("/Counter/-7", .record(.int(-7))),
        ]
        for (path, selection) in cases {
            let target = try directory.target(path: path)
            #expect(target.selection == selection, "\(path)")
            #expect(target.name == path.split(separator: "/").first.map(String.init))
        }
        let withQuery = try directory.target(path: "/Todo/", query: "title=x")
        #expect(withQuery.query == "title=x")
        #expect(try directory.target(path: "/Todo/", query: "").query == nil, "an empty query is no query")
        #expect(try directory.target(path: "/Todo/a%2Fb").path == "/Todo/a%2Fb", "messages show the key as sent")
    }

    @Test func urlPathsThatNameNoTargetSayWhy() throws {
        let store = try openTablesStore()
        defer { closeAndRemove(store) }
        let directory = TableDirectory(store: store)
        let cases: [(String, TableTargetError.Kind, Int, String)] = [
            ("/", .noTable, 404, "name a table: /Table/id, /Table/, /Table/prefix/ or /Table/?query"),
            ("//Todo/1", .noTable, 404, "name a table"),
            ("Todo/1", .noTable, 404, "name a table"),
            ("/Nope/1", .unknownTable, 404, "no exported table named 'Nope'; exported tables: Counter, Todo"),
            ("/Hidden/1", .unknownTable, 404, "no exported table named 'Hidden'"),
            ("/todo/1", .unknownTable, 404, "no exported table named 'todo'"),
            ("/Todo/%zz", .badEscape, 400, "the key in /Todo/%zz has malformed percent-escape at byte 0"),
            ("/Todo/%FF", .badEscape, 400, "percent-escapes that do not decode to UTF-8 text"),
            (
                "/Todo/a%00b", .invalidID, 400,
                "'a%00b' is not a valid ID key for Todo: a key must not contain control characters; U+0000 at character 1"
            ),
            ("/Counter/x", .invalidID, 400, "'x' is not a valid Int key for Counter: expected a whole number within 32 bits"),
            ("/Counter/99999999999", .invalidID, 400, "expected a whole number within 32 bits"),
            ("/Todo/ab%0A/", .invalidPrefix, 400, "the prefix in /Todo/ab%0A/ can match no key: a key must not contain control characters"),
            ("/Todo/%zz/", .badEscape, 400, "the prefix in /Todo/%zz/ has malformed percent-escape"),
            ("/Counter/1/", .invalidPrefix, 400, "the prefix in /Counter/1/ can match no key: the keys of Counter are numbers"),
        ]
        for (path, kind, status, words) in cases {
            guard case .failure(let error) = Self.read(directory, path) else {
                Issue.record("\(path) was read as a target")
                continue
            }
            #expect(error.kind == kind, "\(path)")
            #expect(error.status == status, "\(path)")
            #expect(error.code == (status == 404 ? "notFound" : "invalidID"), "\(path)")
            #expect(error.detail.contains(words), "\(path): \(error.detail)")
        }
    }

    @Test func aMiddlewareFindsTheTableWithoutReadingTheKey() throws {
        let store = try openTablesStore()
        defer { closeAndRemove(store) }
        let directory = TableDirectory(store: store)
        #expect(directory.table(inPath: "/Todo/%zz")?.name == "Todo", "the key is not read")
        #expect(directory.table(inPath: "/Todo")?.name == "Todo")
        #expect(directory.table(inPath: "/Hidden/1") == nil)
        #expect(directory.table(inPath: "//Todo") == nil)
        #expect(directory.table(inPath: "Todo/1") == nil)
        #expect(directory.table(inPath: "/") == nil)
        #expect(directory.exportedNames == ["Counter", "Todo"])
    }

    @Test func topicsNameRecordsLiterally() throws {
        let store = try openTablesStore()
        defer { closeAndRemove(store) }
        let directory = TableDirectory(store: store)
        #expect(try directory.target(topic: "Todo/a")?.recordID == .string("a"))
        #expect(try directory.target(topic: "Todo/a/b")?.recordID == .string("a/b"))
        #expect(try directory.target(topic: "Todo/a%2Fb")?.recordID == .string("a%2Fb"), "a topic is text: nothing is decoded")
        #expect(try directory.target(topic: "Todo/a/")?.recordID == .string("a/"), "topics have no prefix form")
        #expect(try directory.target(topic: "Counter/7")?.recordID == .int(7))
        for plain in ["Todo", "Todo/", "Nope/1", "Hidden/1", "/Todo/1", "sensors/kitchen"] {
            #expect(try directory.target(topic: plain) == nil, "\(plain) is a plain topic")
        }
        // The same words as a URL's, since it is the same rule.
        #expect(throws: TableTargetError.self) { try directory.target(topic: "Counter/x") }
        do {
            _ = try directory.target(topic: "Counter/x")
        } catch {
            guard case .failure(let fromURL) = Self.read(directory, "/Counter/x") else { return }
            #expect(error.detail == fromURL.detail)
            #expect(error.kind == .invalidID)
        }
    }

    @Test func aRecordsURLPathReadsBackAsItsKey() throws {
        let store = try openTablesStore()
        defer { closeAndRemove(store) }
        let directory = TableDirectory(store: store)
        let todo = try #require(directory.table(named: "Todo"))
        let counter = try #require(directory.table(named: "Counter"))
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("aZ09-._~ /%?#&=+✓é😀\\\"'")
        for _ in 0..<500 {
            let length = Int.random(in: 1...12, using: &generator)
            let key = String((0..<length).map { _ in alphabet.randomElement(using: &generator)! })
            let path = TableDirectory.path(todo, .string(key))
            #expect(!path.dropFirst("/Todo/".count).contains("/"), "a '/' inside a key is escaped: \(path)")
            #expect(try directory.target(path: path).recordID == .string(key), "\(path)")
        }
        #expect(TableDirectory.path(todo, .string("a/")) == "/Todo/a%2F")
        #expect(try directory.target(path: "/Todo/a%2F").recordID == .string("a/"), "an escaped trailing '/' is part of the key")
        #expect(try directory.target(path: TableDirectory.path(counter, .int(-12))).recordID == .int(-12))
        #expect(TableDirectory.topic(todo, .string("a/b")) == "Todo/a/b")
        #expect(TableDirectory.topic(try #require(store.table(typeName: "Hidden")), .string("x")) == nil)
    }
}
