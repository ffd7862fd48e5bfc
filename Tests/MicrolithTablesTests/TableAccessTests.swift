import MicrolithJSON
import MicrolithStore
import MicrolithTables
import NIOCore
import Synchronization
import Testing

@Suite struct TableAccessTests {
    struct Refused: Error {}

    /// What the hooks saw, shared with them.
    final class Log: Sendable {
        private let lines = Mutex<[String]>([])
        func append(_ line: String) { lines.withLock { $0.append(line) } }
        var all: [String] { lines.withLock { $0 } }
    }

    /// Hooks on Todo: writes fill `slug` from `title` and refuse a title "no"; reads add `shown`;
    /// a delete of "keep" is refused; queries with `secret` in the query string are refused.
    static func todoHooks(seen: Log = Log()) -> TableHooks {
        var hooks = TableHooks(table: "Todo", module: "test")
        let write: TableHooks.Write = { body, _, _, request in
            seen.append("\(request.method) \(request.path) via \(request.transport)")
            guard body["title"] != "no" else { throw Refused() }
            var shaped = body
            if case .string(let title)? = body["title"] { shaped["slug"] = .string(title.lowercased()) }
            return shaped
        }
        hooks.put = write
        hooks.patch = write
        hooks.post = write
        hooks.get = { record, _ in
            var shown = record
            shown["shown"] = true
            return shown
        }
        hooks.delete = { record, _, _ in if record["id"] == "keep" { throw Refused() } }
        hooks.search = { request in if request.query?.contains("secret") == true { throw Refused() } }
        return hooks
    }

    static func request(_ method: String, _ path: String) -> ResourceRequest {
        ResourceRequest(method: method, path: path, transport: "test")
    }

    @Test func restWritesWithoutHooksRunWithoutASavepointEach() async throws {
        let store = try openTablesStore()
        defer { closeAndRemove(store) }
        func savepointWrites() -> UInt64 { store.writeStatistics().values.map(\.savepointWrites).reduce(0, +) }
        let before = savepointWrites()
        let plain = TableAccess(store: store)
        let todo = try #require(plain.directory.table(named: "Todo"))
        _ = try await plain.put(todo, .string("a"), body: ["title": "Milk"], for: .anonymous, request: Self.request("PUT", "/Todo/a"))
        _ = try await plain.patch(todo, .string("a"), patch: ["title": "Eggs"], for: .anonymous, request: Self.request("PATCH", "/Todo/a"))
        _ = try await plain.post(todo, body: ["title": "Tea"], for: .anonymous, request: Self.request("POST", "/Todo/"))
        _ = try await plain.delete(todo, .string("a"), for: .anonymous, request: Self.request("DELETE", "/Todo/a"))
        #expect(savepointWrites() == before, "they touch nothing but their transaction: replayable, no savepoint")

        let hooked = TableAccess(store: store, hooks: [Self.todoHooks()])
        _ = try await hooked.put(todo, .string("b"), body: ["title": "Milk"], for: .anonymous, request: Self.request("PUT", "/Todo/b"))
        #expect(savepointWrites() == before + 1, "a hook may do more than the transaction: its write gets a savepoint")
    }

    @Test func everyWriteGoesThroughTheTablesHooks() async throws {
        let store = try openTablesStore()
        defer { closeAndRemove(store) }
        let seen = Log()
        let access = TableAccess(store: store, hooks: [Self.todoHooks(seen: seen)])
        let todo = try #require(access.directory.table(named: "Todo"))

        let (put, created) = try await access.put(
            todo, .string("a"), body: ["title": "Milk"], for: .anonymous, request: Self.request("PUT", "/Todo/a"))
        #expect(created)
        #expect(put.record["slug"] == "milk", "the put hook shaped the stored record")
        #expect(put.record["id"] == "a", "the hook saw the key in the body")
        let patched = try await access.patch(todo, .string("a"), patch: ["title": "Eggs"], for: .anonymous, request: Self.request("PATCH", "/Todo/a"))
        #expect(patched?.record["slug"] == "eggs")
        #expect(
            try await access.patch(todo, .string("none"), patch: ["title": "x"], for: .anonymous, request: Self.request("PATCH", "/Todo/none")) == nil
        )
        let posted = try await access.post(todo, body: ["title": "Tea"], for: .anonymous, request: Self.request("POST", "/Todo/"))
        #expect(posted.record["slug"] == "tea")
        await #expect(throws: Refused.self) {
            _ = try await access.put(todo, .string("b"), body: ["title": "no"], for: .anonymous, request: Self.request("PUT", "/Todo/b"))
        }
        #expect(try await store.get(todo, .string("b")) == nil, "a refused write stores nothing")
        #expect(seen.all.contains("PUT /Todo/a via test"), "the hook saw the request")

        _ = try await access.put(todo, .string("keep"), body: ["title": "Keep"], for: .anonymous, request: Self.request("PUT", "/Todo/keep"))
        await #expect(throws: Refused.self) {
            _ = try await access.delete(todo, .string("keep"), for: .anonymous, request: Self.request("DELETE", "/Todo/keep"))
        }
        #expect(try await store.get(todo, .string("keep")) != nil)
        #expect(try await access.delete(todo, .string("a"), for: .anonymous, request: Self.request("DELETE", "/Todo/a")))
        #expect(try await !access.delete(todo, .string("a"), for: .anonymous, request: Self.request("DELETE", "/Todo/a")), "deleting nothing says so")
    }

    @Test func readsShowWhatTheGetHookShows() async throws {
        let store = try openTablesStore()
        defer { closeAndRemove(store) }
        let access = TableAccess(store: store, hooks: [Self.todoHooks()])
        let todo = try #require(access.directory.table(named: "Todo"))
        let counter = try #require(access.directory.table(named: "Counter"))
        _ = try await store.write { txn in try txn.put(todo, id: .string("a"), body: ["title": "A"]) }

        let read = try #require(try await access.get(todo, .string("a"), for: .anonymous, request: Self.request("GET", "/Todo/a")))
        #expect(read.record["shown"] == true)
        let json = try JSONParser.parse(Array(read.json.readableBytesView))
        #expect(json.objectValue?["shown"] == true, "the JSON sent is the shown record's")
        #expect(try await access.get(todo, .string("none"), for: .anonymous, request: Self.request("GET", "/Todo/none")) == nil)
        #expect(!access.showsStoredRecords(todo))
        #expect(access.showsStoredRecords(counter), "a table without a get hook is shown as stored")
        #expect(throws: Refused.self) {
            try access.checkSearch(todo, for: .anonymous, request: ResourceRequest(method: "GET", path: "/Todo/", query: "secret=1"))
        }
        try access.checkSearch(todo, for: .anonymous, request: ResourceRequest(method: "GET", path: "/Todo/", query: "title=A"))
    }

    @Test func aTableWithoutHooksNeverBuildsTheRequest() async throws {
        let store = try openTablesStore()
        defer { closeAndRemove(store) }
        let access = TableAccess(store: store, hooks: [Self.todoHooks()])
        let counter = try #require(access.directory.table(named: "Counter"))
        let built = Log()
        func request() -> ResourceRequest {
            built.append("built")
            return Self.request("PUT", "/Counter/1")
        }
        _ = try await access.put(counter, .int(1), body: ["value": 1], for: .anonymous, request: request())
        _ = try await access.get(counter, .int(1), for: .anonymous, request: request())
        _ = try await access.patch(counter, .int(1), patch: ["value": 2], for: .anonymous, request: request())
        _ = try await access.delete(counter, .int(1), for: .anonymous, request: request())
        try access.checkSearch(counter, for: .anonymous, request: request())
        #expect(built.all.isEmpty)
    }

    @Test func hooksNameTheirTableByTypeOrTableName() throws {
        let store = try openTablesStore()
        defer { closeAndRemove(store) }
        let access = TableAccess(store: store, hooks: [TableHooks(table: "Counter", module: "m"), TableHooks(table: "NoSuchTable", module: "m")])
        #expect(access.hooks(try #require(access.directory.table(named: "Counter")))?.module == "m")
        #expect(access.hooks(try #require(access.directory.table(named: "Todo"))) == nil)
    }

    @Test func everyVerbIsCheckedAgainstTheRoles() async throws {
        let store = try openTablesStore()
        defer { closeAndRemove(store) }
        let roles = try Roles(
            [
                Roles.Declaration(name: "anonymous", tables: [("Todo", [.read, .insert])]),
                Roles.Declaration(name: "editor", tables: [("Todo", [.read, .update])]),
            ], store: store)
        let access = TableAccess(store: store, roles: roles)
        let todo = try #require(access.directory.table(named: "Todo"))
        let editor = Principal(user: "ed", roles: ["editor"])
        let request = Self.request("PUT", "/Todo/a")

        // PUT of a new key is an insert, of an existing one an update.
        #expect(try await access.put(todo, .string("a"), body: ["title": "A"], for: .anonymous, request: request).created)
        await #expect(throws: AccessDenied(verb: .update, table: todo, principal: .anonymous)) {
            _ = try await access.put(todo, .string("a"), body: ["title": "B"], for: .anonymous, request: request)
        }
        await #expect(throws: AccessDenied(verb: .insert, table: todo, principal: editor)) {
            _ = try await access.put(todo, .string("new"), body: ["title": "N"], for: editor, request: request)
        }
        #expect(try await store.get(todo, .string("new")) == nil)
        #expect(try await !access.put(todo, .string("a"), body: ["title": "C"], for: editor, request: request).created)
        #expect(try await access.get(todo, .string("a"), for: editor, request: request)?.record["title"] == "C")
        await #expect(throws: AccessDenied(verb: .update, table: todo, principal: .anonymous)) {
            _ = try await access.patch(todo, .string("a"), patch: ["title": "D"], for: .anonymous, request: request)
        }
        await #expect(throws: AccessDenied(verb: .insert, table: todo, principal: editor)) {
            _ = try await access.post(todo, body: ["title": "E"], for: editor, request: request)
        }
        await #expect(throws: AccessDenied(verb: .delete, table: todo, principal: editor)) {
            _ = try await access.delete(todo, .string("a"), for: editor, request: request)
        }
        #expect(throws: AccessDenied(verb: .subscribe, table: todo, principal: .anonymous)) {
            try access.checkSearch(todo, .subscribe, for: .anonymous, request: request)
        }
        try access.checkSearch(todo, for: .anonymous, request: request)
        let counter = try #require(access.directory.table(named: "Counter"))
        await #expect(throws: AccessDenied(verb: .read, table: counter, principal: .anonymous)) {
            _ = try await access.get(counter, .int(1), for: .anonymous, request: request)
        }
        #expect(access.servesCachedReads(todo))
        #expect(!access.servesCachedReads(counter), "the fast path answers only what the anonymous role may read")
        #expect(TableAccess(store: store).allows(.delete, counter, for: .anonymous), "without roles every table is open")
    }
}
