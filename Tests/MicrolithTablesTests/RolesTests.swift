import MicrolithStore
import MicrolithTables
import Testing

@Suite struct RolesTests {
    @Test func aRoleMayDoWhatItIsGrantedAndNothingElse() throws {
        let store = try openTablesStore()
        defer { closeAndRemove(store) }
        let roles = try Roles(
            [
                Roles.Declaration(name: "anonymous", tables: [("Todo", [.read, .subscribe]), ("*", [.read])]),
                Roles.Declaration(name: "editor", tables: [("Todo", Set(TableVerb.allCases))]),
                Roles.Declaration(name: "root", superUser: true),
            ], store: store)
        let todo = try #require(store.table(exportName: "Todo"))
        let counter = try #require(store.table(exportName: "Counter"))
        let hidden = try #require(store.table(typeName: "Hidden"))
        let anonymous = Principal.anonymous
        #expect(roles.allows(.read, todo, for: anonymous))
        #expect(roles.allows(.subscribe, todo, for: anonymous))
        #expect(!roles.allows(.update, todo, for: anonymous))
        #expect(roles.allows(.read, counter, for: anonymous), "'*' covers the tables the role does not name")
        #expect(!roles.allows(.subscribe, counter, for: anonymous))
        #expect(roles.allows(.read, hidden, for: anonymous))
        let editor = Principal(user: "ada", roles: ["editor"])
        #expect(TableVerb.allCases.allSatisfy { roles.allows($0, todo, for: editor) })
        #expect(!roles.allows(.read, counter, for: editor), "no '*': a table not named is closed")
        let both = Principal(user: "ada", roles: ["anonymous", "editor"])
        #expect(roles.allows(.read, counter, for: both) && roles.allows(.delete, todo, for: both), "any role granting is enough")
        let root = Principal(user: "root", roles: ["root"])
        #expect(TableVerb.allCases.allSatisfy { roles.allows($0, counter, for: root) && roles.allows($0, hidden, for: root) })
        let stranger = Principal(user: "eve", roles: ["nobody"])
        #expect(TableVerb.allCases.allSatisfy { !roles.allows($0, todo, for: stranger) }, "an unknown role grants nothing")
        #expect(roles.verbs(of: "anonymous", on: todo) == [.read, .subscribe])
        #expect(roles.verbs(of: "root", on: todo) == Set(TableVerb.allCases))
        #expect(roles.names == ["anonymous", "editor", "root", "super_user"], "super_user exists undeclared")
        #expect(roles.contains("root") && !roles.contains("nobody"))
    }

    @Test func noRolesMeansNothingIsAllowed() throws {
        let store = try openTablesStore()
        defer { closeAndRemove(store) }
        let roles = try Roles([], store: store)
        let todo = try #require(store.table(exportName: "Todo"))
        #expect(TableVerb.allCases.allSatisfy { !roles.allows($0, todo, for: .anonymous) })
    }

    @Test func mistakesAreRefusedWithTheirNames() throws {
        let store = try openTablesStore()
        defer { closeAndRemove(store) }
        #expect {
            try Roles([Roles.Declaration(name: "a", tables: [("Todos", [.read])])], store: store)
        } throws: { error in
            "\(error)".contains("role a names table 'Todos', which the schema does not declare; tables: Counter, Hidden, Todo")
        }
        #expect {
            try Roles([Roles.Declaration(name: "a"), Roles.Declaration(name: "a", superUser: true)], store: store)
        } throws: { error in
            "\(error)".contains("role a is declared twice")
        }
        // A table may be named by type name or table name as well as by export name.
        let roles = try Roles([Roles.Declaration(name: "a", tables: [("Hidden", [.read])])], store: store)
        #expect(roles.allows(.read, try #require(store.table(typeName: "Hidden")), for: Principal(user: nil, roles: ["a"])))
    }

    @Test func refusalsNameWhoWhatAndWhere() throws {
        let store = try openTablesStore()
        defer { closeAndRemove(store) }
        let todo = try #require(store.table(exportName: "Todo"))
        #expect(AccessDenied(verb: .update, table: todo, principal: .anonymous).message == "the anonymous role may not update Todo records")
        #expect(
            AccessDenied(verb: .subscribe, table: todo, principal: Principal(user: "ada", roles: ["customer"])).message
                == "user ada (roles: customer) may not subscribe to Todo records")
        #expect(AccessDenied(verb: .read, table: todo, principal: .anonymous).status == 403)
    }
}
