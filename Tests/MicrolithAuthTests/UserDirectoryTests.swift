import Foundation
import MicrolithAuth
import MicrolithSchema
import MicrolithStore
import MicrolithTables
import Testing

@Suite struct UserDirectoryTests {
    @Test func usersSignInWithTheirPasswordAndHoldTheirRoles() async throws {
        try await withUsers { users in
            try await users.add("ada", password: "s3cret", roles: ["editor", "customer"])
            try await users.add("bob", password: "pw", roles: [])
            #expect(try await users.list() == [.init(name: "ada", roles: ["editor", "customer"]), .init(name: "bob", roles: [])])
            #expect(try await users.verify("ada", password: "s3cret") == Principal(user: "ada", roles: ["editor", "customer"]))
            #expect(try await users.verify("ada", password: "wrong") == nil)
            #expect(try await users.verify("nobody", password: "s3cret") == nil)
            try await users.setPassword("ada", password: "new")
            #expect(try await users.verify("ada", password: "s3cret") == nil)
            #expect(try await users.verify("ada", password: "new") != nil)
            try await users.setRoles("bob", roles: ["super_user"])
            #expect(try await users.verify("bob", password: "pw")?.roles == ["super_user"])
            #expect(try await users.remove("bob"))
            #expect(try await !users.remove("bob"))
            #expect(try await users.verify("bob", password: "pw") == nil)
        }
    }

    @Test func mistakesAreRefusedWithAReason() async throws {
        try await withUsers { users in
            try await users.add("ada", password: "pw", roles: [])
            let cases: [(() async throws -> Void, String)] = [
                ({ try await users.add("ada", password: "pw", roles: []) }, "a user named ada exists already"),
                ({ try await users.add("a b", password: "pw", roles: []) }, "a user name is text without spaces"),
                ({ try await users.add("a:b", password: "pw", roles: []) }, "without spaces, control characters or ':'"),
                ({ try await users.add("", password: "pw", roles: []) }, "a user name is text"),
                ({ try await users.add("eve", password: "", roles: []) }, "the password of eve is empty"),
                ({ try await users.add("eve", password: "pw", roles: ["a,b"]) }, "a role name is non-empty text without ','"),
                ({ try await users.setPassword("nobody", password: "pw") }, "there is no user named nobody"),
                ({ try await users.setRoles("nobody", roles: []) }, "there is no user named nobody"),
            ]
            for (change, message) in cases {
                await #expect {
                    try await change()
                } throws: { error in
                    (error as? UserDirectory.Refusal)?.description.contains(message) == true
                }
            }
            #expect(try await users.list().map(\.name) == ["ada"])
        }
    }
}
