import MicrolithJSON
import MicrolithStore
import MicrolithTables
import NIOCore
import Testing

/// `hide` and `readOnly` in roles: what reads drop, what writes refuse, what queries may name.
@Suite struct AttributeLimitsTests {
    static func request(_ method: String, _ path: String) -> ResourceRequest {
        ResourceRequest(method: method, path: path)
    }

    /// The anonymous role reads Todo without `slug`; a clerk reads everything but may not write `slug`;
    /// a viewer hides `slug` too, so someone holding viewer and clerk sees it (the clerk does).
    static func roles(_ store: Store) throws -> Roles {
        try Roles(
            [
                Roles.Declaration(
                    name: "anonymous", tables: [("Todo", [.read, .insert, .subscribe])], attributes: ["Todo": .init(hide: ["slug"])]),
                Roles.Declaration(name: "clerk", tables: [("Todo", [.read, .insert, .update])], attributes: ["Todo": .init(readOnly: ["slug"])]),
                Roles.Declaration(name: "viewer", tables: [("Todo", [.read])], attributes: ["Todo": .init(hide: ["slug", "title"])]),
            ], store: store)
    }

    @Test func rolesCombineTheirLimits() throws {
        let store = try openTablesStore()
        defer { closeAndRemove(store) }
        let roles = try Self.roles(store)
        let todo = try #require(store.table(exportName: "Todo"))
        #expect(roles.hidden(todo, for: .anonymous) == ["slug"])
        #expect(roles.unwritable(todo, .insert, for: .anonymous) == ["slug"], "hidden is not writable either")
        let clerk = Principal(user: "c", roles: ["clerk"])
        #expect(roles.hidden(todo, for: clerk).isEmpty)
        #expect(roles.unwritable(todo, .update, for: clerk) == ["slug"])
        #expect(roles.hidden(todo, for: Principal(user: "v", roles: ["viewer"])) == ["slug", "title"])
        #expect(roles.hidden(todo, for: Principal(user: "b", roles: ["viewer", "clerk"])).isEmpty, "one role showing it is enough")
        #expect(roles.hidden(todo, for: Principal(user: "b", roles: ["viewer", "anonymous"])) == ["slug"])
        #expect(roles.hidden(todo, for: Principal(user: "r", roles: [Roles.superUser])).isEmpty)
    }

    @Test func declarationsNamingUnknownAttributesOrTheKeyAreRefused() throws {
        let store = try openTablesStore()
        defer { closeAndRemove(store) }
        #expect(throws: Roles.DeclarationError.self) {
            try Roles([Roles.Declaration(name: "a", tables: [("Todo", [.read])], attributes: ["Todo": .init(hide: ["titel"])])], store: store)
        }
        #expect(throws: Roles.DeclarationError.self) {
            try Roles([Roles.Declaration(name: "a", tables: [("Todo", [.read])], attributes: ["Todo": .init(hide: ["id"])])], store: store)
        }
        #expect(throws: Roles.DeclarationError.self) {
            try Roles([Roles.Declaration(name: "a", tables: [("*", [.read])], attributes: ["*": .init(hide: ["id"])])], store: store)
        }
    }

    @Test func readsDropHiddenAttributesAndWritesRefuseThem() async throws {
        let store = try openTablesStore()
        defer { closeAndRemove(store) }
        let access = TableAccess(store: store, roles: try Self.roles(store))
        let todo = try #require(access.directory.table(named: "Todo"))
        let clerk = Principal(user: "c", roles: ["clerk"])
        let request = Self.request("PUT", "/Todo/a")
        let root = Principal(user: "r", roles: [Roles.superUser])
        _ = try await access.put(todo, .string("a"), body: ["title": "A", "slug": "a-slug"], for: root, request: request)

        #expect(try await access.get(todo, .string("a"), for: .anonymous, request: request)?.record == ["id": "a", "title": "A"])
        let shownJSON = try #require(try await access.get(todo, .string("a"), for: .anonymous, request: request)?.json)
        #expect(!String(buffer: shownJSON).contains("slug"), "the JSON answered is the shown record's")
        #expect(try await access.get(todo, .string("a"), for: clerk, request: request)?.record["slug"] == "a-slug")
        #expect(!access.servesCachedReads(todo), "the fast path would show the anonymous role everything")
        #expect(!access.showsStoredRecords(todo, to: .anonymous) && access.showsStoredRecords(todo, to: clerk))

        // A write naming what the principal may not write is refused, whatever the value.
        await #expect(throws: AccessDenied(action: "write Todo.slug", principal: clerk)) {
            _ = try await access.patch(todo, .string("a"), patch: ["slug": "x"], for: clerk, request: request)
        }
        await #expect(throws: AccessDenied(action: "write Todo.slug", principal: .anonymous)) {
            _ = try await access.post(todo, body: ["title": "new", "slug": "s"], for: .anonymous, request: request)
        }
        await #expect(throws: AccessDenied(action: "write Todo.slug", principal: clerk)) {
            _ = try await access.put(todo, .string("a"), body: ["title": "B", "slug": "b"], for: clerk, request: request)
        }
        // A replace leaving it out keeps the stored value: a PUT cannot erase what it may not write.
        _ = try await access.put(todo, .string("a"), body: ["title": "B"], for: clerk, request: request)
        #expect(try await store.get(todo, .string("a"))?.record == ["id": "a", "title": "B", "slug": "a-slug"])
        #expect(try await access.patch(todo, .string("a"), patch: ["title": "C"], for: clerk, request: request)?.record["slug"] == "a-slug")

        // Queries may not filter or sort on hidden attributes.
        #expect(throws: AccessDenied(action: "filter or sort Todo records by slug", principal: .anonymous)) {
            try access.checkSearch(todo, paths: [["title"], ["slug"]], for: .anonymous, request: request)
        }
        try access.checkSearch(todo, paths: [["title"]], for: .anonymous, request: request)
        try access.checkSearch(todo, paths: [["slug"]], for: clerk, request: request)
    }

    /// A role that may update and subscribe but not read, and hides `slug`: nothing it does shows
    /// or tests the hidden value.
    @Test func aRoleThatWritesWithoutReadingLearnsNothingItHides() async throws {
        let store = try openTablesStore()
        defer { closeAndRemove(store) }
        let roles = try Roles(
            [Roles.Declaration(name: "blind", tables: [("Todo", [.update, .subscribe])], attributes: ["Todo": .init(hide: ["slug"])])],
            store: store)
        let access = TableAccess(store: store, roles: roles)
        let todo = try #require(access.directory.table(named: "Todo"))
        let blind = Principal(user: "b", roles: ["blind"])
        let request = Self.request("PUT", "/Todo/a")
        let root = Principal(user: "r", roles: [Roles.superUser])
        _ = try await access.put(todo, .string("a"), body: ["title": "A", "slug": "secret"], for: root, request: request)

        // Naming the hidden attribute is refused even with its stored value: a right guess is not told apart.
        for guess in ["secret", "wrong"] {
            await #expect(throws: AccessDenied(action: "write Todo.slug", principal: blind)) {
                _ = try await access.put(todo, .string("a"), body: ["title": "B", "slug": .string(guess)], for: blind, request: request)
            }
        }
        // The answer of a write leaves out what the writing role hides, though no role grants read.
        let replaced = try await access.put(todo, .string("a"), body: ["title": "B"], for: blind, request: request)
        #expect(replaced.record.record["slug"] == "secret", "the replace kept it")
        #expect(access.withoutHidden(replaced.record, table: todo, verb: .update, for: blind).record == ["id": "a", "title": "B"])
        // A standing query may not filter on it either (the subscribe grant's limits).
        #expect(throws: AccessDenied(action: "filter or sort Todo records by slug", principal: blind)) {
            try access.checkSearch(todo, .subscribe, paths: [["slug"]], for: blind, request: request)
        }
    }
}
