import Foundation
import HTTPTypes
import HummingbirdTesting
import MicrolithAuth
import MicrolithHTTP
import MicrolithJSON
import MicrolithMQTT
import MicrolithRuntime
import MicrolithSchema
import MicrolithStore
import MicrolithTables
import NIOCore
import Testing

@Suite struct RolesFileTests {
    static let schema = try! SchemaParser.parse(todoSchema, file: "schema.graphql")

    @Test func rolesGrantVerbsByTable() throws {
        let declared = try RolesFile.check(
            """
            anonymous:
              tables:
                Todo: [read, subscribe]
                People: read
                "*": []
            editor:
              tables:
                Person: all
            admin:
              super_user: true
            """, file: "roles.yaml", schema: Self.schema)
        #expect(declared.map(\.name) == ["anonymous", "editor", "admin"])
        #expect(declared[0].tables.map(\.table) == ["Todo", "People", "*"])
        #expect(declared[0].tables.map(\.verbs) == [[.read, .subscribe], [.read], []])
        #expect(declared[1].tables[0].verbs == Set(TableVerb.allCases))
        #expect(declared[2].superUser)
        #expect(try RolesFile.check("", file: "roles.yaml", schema: Self.schema).isEmpty, "an empty file declares no role")
    }

    @Test(arguments: [
        ("- anonymous", "roles.yaml:1:1: the top level must map role names to their permissions"),
        ("anonymous: read", "roles.yaml:1:12: role anonymous must be a mapping with 'tables'"),
        (
            "anonymous:\n  tables:\n    Todo: [read, wirte]",
            "roles.yaml:3:18: unknown verb 'wirte' for role anonymous on Todo; verbs: read, insert, update, delete, subscribe, publish, all"
        ),
        ("anonymous:\n  table:\n    Todo: read", "roles.yaml:2:3: unknown setting 'table' of role anonymous"),
        ("anonymous:\n  tables:\n    Todos: read", "role anonymous names table 'Todos', which the schema does not declare; tables: People, Todo"),
        ("anonymous:\n  super_user: maybe", "roles.yaml:2:15: super_user of role anonymous must be true or false"),
        ("anonymous:\n  tables: [Todo]", "roles.yaml:2:11: tables of role anonymous must map table names to verbs"),
        (
            "anonymous:\n  tables:\n    Todo: {read: true}",
            "roles.yaml:3:12: unknown setting 'read' of role anonymous on Todo; it takes 'verbs', 'hide' and 'readOnly'"
        ),
        (
            "anonymous:\n  tables:\n    Todo: {verbs: read, hide: {a: 1}}",
            "roles.yaml:3:31: hide of role anonymous on Todo must be a list of attribute names"
        ),
        ("anonymous:\n  tables:\n    \"*\": {verbs: read, hide: [title]}", "roles.yaml:3:10: attribute limits need a table name, not '*'"),
        ("a: {tables: {}}\na: {tables: {}}", "roles.yaml: invalid YAML: Parser: expected all keys to be unique"),
        ("anonymous: [", "roles.yaml: invalid YAML"),
    ])
    func mistakesNameFileLineAndColumn(text: String, message: String) throws {
        #expect {
            try RolesFile.check(text, file: "roles.yaml", schema: Self.schema)
        } throws: { error in
            (error as? RuntimeError)?.message.contains(message) == true
        }
    }

    @Test func aServerWithRolesRefusesWhatTheyDoNotGrant() async throws {
        let roles = """
            anonymous:
              tables:
                Todo: [read]
            """
        try await withLiveServer(files: ["roles.yaml": roles]) { server, client in
            _ = try await server.store.write { txn in
                try txn.put(try #require(server.store.table(exportName: "Todo")), id: .string("t1"), body: ["title": "x"])
            }
            #expect(try await client.execute(uri: "/Todo/t1", method: .get).status == .ok)
            #expect(try await client.execute(uri: "/Todo/t1", method: .get).status == .ok, "the second read, from the cache")
            let put = try await client.execute(uri: "/Todo/t1", method: .put, body: jsonBody(#"{"title":"y"}"#))
            #expect(put.status == .unauthorized, "without credentials: sign in")
            let problem = try JSONParser.parse(String(buffer: put.body)).objectValue
            #expect(problem?["code"] == "unauthorized")
            #expect(problem?["detail"]?.stringValue?.hasPrefix("the anonymous role may not update Todo records") == true)
            #expect(try await client.execute(uri: "/People/", method: .get).status == .unauthorized, "a table not named is closed")
            let people = try await client.execute(uri: "/People/p1", method: .get)
            #expect(people.status == .unauthorized, "the fast path does not answer what the role may not read")
            let events = try await client.execute(uri: "/Todo/", method: .get, headers: [.accept: "text/event-stream"])
            #expect(events.status == .unauthorized, "subscribing needs the subscribe permission")
            let socket = try await WebSocketTestClient(port: try #require(client.port), path: "/Todo/t1")
            let frame = try #require(try await socket.nextMessage())
            let refusal = try JSONParser.parse(frame.text).objectValue
            #expect(refusal?["status"] == 401, "\(frame.text)")
            #expect(refusal?["detail"]?.stringValue?.hasPrefix("the anonymous role may not subscribe to Todo records") == true, "\(frame.text)")
            #expect(try await socket.nextMessage()?.closeCode == 4401)
        }
    }

    @Test func usersSignInWithHTTPBasicAndGetTheirRolesPermissions() async throws {
        let roles = """
            anonymous:
              tables:
                Todo: [read]
            reader:
              tables:
                Todo: [read]
                People: [read]
            """
        let environment = ["MICROLITH_ADMIN_USER": "root", "MICROLITH_ADMIN_PASSWORD": "first-secret"]
        try await withLiveServer(files: ["roles.yaml": roles], environment: environment) { server, client in
            try await server.authenticator.users.add("rita", password: "reads", roles: ["reader"])
            func basic(_ user: String, _ password: String) -> HTTPFields {
                [.authorization: "Basic " + Data("\(user):\(password)".utf8).base64EncodedString(), .contentType: "application/json"]
            }
            let anonymous = try await client.execute(uri: "/Todo/t1", method: .put, body: jsonBody(#"{"title":"x"}"#))
            #expect(anonymous.status == .unauthorized)
            #expect(anonymous.headers[.wwwAuthenticate] == #"Basic realm="microlith", charset="UTF-8""#)
            #expect(try JSONParser.parse(String(buffer: anonymous.body)).objectValue?["code"] == "unauthorized")

            let root = try await client.execute(
                uri: "/Todo/t1", method: .put, headers: basic("root", "first-secret"), body: jsonBody(#"{"title":"x"}"#))
            #expect(root.status == .created, "the first super user, made from the environment, may do everything")
            let wrong = try await client.execute(uri: "/Todo/t1", method: .get, headers: basic("root", "guess"))
            #expect(wrong.status == .unauthorized, "bad credentials are refused, not served as anonymous")

            let rita = try await client.execute(uri: "/People/", method: .get, headers: basic("rita", "reads"))
            #expect(rita.status == .ok, "her role reads People, which anonymous may not")
            let ritaWrites = try await client.execute(uri: "/Todo/t1", method: .delete, headers: basic("rita", "reads"))
            #expect(ritaWrites.status == .forbidden)
            #expect(
                try JSONParser.parse(String(buffer: ritaWrites.body)).objectValue?["detail"]
                    == "user rita (roles: reader) may not delete Todo records")
            #expect(try await client.execute(uri: "/People/", method: .get).status == .unauthorized)
        }
    }

    @Test func aBadRolesFileStopsTheStart() async throws {
        let app = try TemporaryApp(["schema.graphql": todoSchema, "roles.yaml": "anonymous:\n  tables:\n    Todo: [reed]"])
        defer { app.remove() }
        await #expect {
            _ = try await MicrolithServer.start(appDirectory: app.path, modules: [], environment: [:]) { c in
                c.http.port = 0
                c.mqtt.enabled = false
                c.store.directory = app.file("data")
            }
        } throws: { error in
            "\(error)".contains("roles.yaml:3:12: unknown verb 'reed'")
        }
    }
}

/// Open subscriptions end when their user changes through `/_users`.
@Suite struct LiveSessionRevocationTests {
    let adminJSON: HTTPFields = {
        var fields = adminHeaders
        fields[.contentType] = "application/json"
        return fields
    }()

    @Test func aWebSocketSubscriptionEndsWhenItsUsersRolesChange() async throws {
        let roles = """
            reader:
              tables:
                Todo: [read, subscribe]
            viewer:
              tables:
                Todo: [read]
            """
        try await withLiveServer(files: ["roles.yaml": roles], environment: adminEnvironment) { server, client in
            _ = try await server.store.write { txn in
                try txn.put(try #require(server.store.table(exportName: "Todo")), id: .string("t1"), body: ["title": "x"])
            }
            let made = try await client.execute(
                uri: "/_users", method: .post, headers: adminJSON,
                body: jsonBody(#"{"name":"ann","password":"pw-ann-1","roles":["reader"]}"#))
            #expect(made.status == .created, "\(String(buffer: made.body))")
            let signedIn = try await client.execute(
                uri: "/_auth/token", method: .post, headers: [.contentType: "application/json"],
                body: jsonBody(#"{"username":"ann","password":"pw-ann-1"}"#))
            let token = try #require(try JSONParser.parse(String(buffer: signedIn.body)).objectValue?["access_token"]?.stringValue)
            let socket = try await WebSocketTestClient(port: try #require(client.port), path: "/Todo/t1?access_token=\(token)")
            // Subscribed, then the record as it is.
            var opening: [String] = []
            while opening.count < 2, let frame = try await socket.nextMessage() { opening.append(frame.text) }
            #expect(opening.first?.contains("subscribed") == true && opening.last?.contains("\"x\"") == true, "\(opening)")
            #expect(server.authenticator.sessions.count == 1)

            let changed = try await client.execute(
                uri: "/_users/ann", method: .patch, headers: adminJSON,
                body: jsonBody(#"{"roles":["viewer"]}"#))
            #expect(changed.status == .ok, "\(String(buffer: changed.body))")
            let refusal = try #require(try await socket.nextMessage())
            let event = try JSONParser.parse(refusal.text).objectValue
            #expect(event?["type"] == "error" && event?["status"] == 401, "\(refusal.text)")
            #expect(event?["detail"] == "ann's roles changed; sign in again", "\(refusal.text)")
            #expect(try await socket.nextMessage()?.closeCode == 4401)
        }
    }
}
