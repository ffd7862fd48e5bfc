import Foundation
import Hummingbird
import MicrolithAuth
import MicrolithHTTP
import MicrolithJSON
import MicrolithSchema
import MicrolithStore
import MicrolithTables
import NIOCore

/// The users and roles over REST, for a super user (the Roles article):
///
/// - `GET /_users`: every user and their roles.
/// - `POST /_users` with `{"name": …, "password": …, "roles": […]}`: a new user (201).
/// - `PATCH /_users/{name}` with `{"password": …}` and/or `{"roles": […]}`: a changed user.
/// - `DELETE /_users/{name}`: the user gone (204), with their refresh tokens.
/// - `GET /_roles`: the roles `roles.yaml` declares and what each may do with each table.
///
/// A changed password or role set, or a removed user, takes effect at once in this process (its
/// remembered credentials are forgotten); access tokens already issued stay valid until they expire.
enum UserRoutes {
    static func add(to router: Router<MicrolithRequestContext>, authenticator: Authenticator, access: TableAccess, maximumBodyBytes: Int) {
        let users = authenticator.users
        @Sendable func requireSuperUser(_ action: String) throws {
            try access.authorize(.superUser, to: action, for: Principal.current)
        }
        router.get("/_users") { _, _ -> Response in
            try requireSuperUser("list the users")
            let list = try await users.list()
            return json(.array(list.map { ["name": .string($0.name), "roles": .array($0.roles.map { .string($0) })] }))
        }
        router.post("/_users") { request, _ -> Response in
            try requireSuperUser("add users")
            let body = try await AuthRoutes.object(request, limit: maximumBodyBytes)
            let name = try AuthRoutes.text(body, "name")
            let password = try AuthRoutes.text(body, "password")
            let roles = try roleNames(body, access: access) ?? []
            try await refusalsAsProblems { try await users.add(name, password: password, roles: roles) }
            return json(["name": .string(name), "roles": .array(roles.map { .string($0) })], status: .created)
        }
        router.patch("/_users/{name}") { request, context -> Response in
            try requireSuperUser("change users")
            let name = try ResourceRoutes.parameter("name", context.parameters.get("name")!)
            let body = try await AuthRoutes.object(request, limit: maximumBodyBytes)
            for key in body.keys where key != "password" && key != "roles" {
                throw Problem(.badRequest, "a user has a password and roles; '\(key)' cannot be changed", code: "badRequest")
            }
            let roles = try roleNames(body, access: access)
            let password = body["password"] == nil ? nil : try AuthRoutes.text(body, "password")
            guard roles != nil || password != nil else {
                throw Problem(.badRequest, "send {\"password\": …} and/or {\"roles\": […]}", code: "badRequest")
            }
            try await refusalsAsProblems {
                if let password { try await users.setPassword(name, password: password) }
                if let roles { try await users.setRoles(name, roles: roles) }
            }
            authenticator.forget(user: name)
            // Open subscriptions and MQTT connections of the user end now, not at the next audit.
            _ = try? await authenticator.sessions.audit()
            guard let user = try await users.list().first(where: { $0.name == name }) else {
                throw Problem(.notFound, "there is no user named \(name)", code: "notFound")
            }
            return json(["name": .string(user.name), "roles": .array(user.roles.map { .string($0) })])
        }
        router.delete("/_users/{name}") { _, context -> Response in
            try requireSuperUser("remove users")
            let name = try ResourceRoutes.parameter("name", context.parameters.get("name")!)
            guard try await users.remove(name) else { throw Problem(.notFound, "there is no user named \(name)", code: "notFound") }
            authenticator.forget(user: name)
            // Open subscriptions and MQTT connections of the user end now, not at the next audit.
            _ = try? await authenticator.sessions.audit()
            return Response(status: .noContent)
        }
        router.get("/_roles") { _, _ -> Response in
            try requireSuperUser("read the roles")
            guard let roles = access.roles else {
                return json(["declared": false, "roles": .array([])])
            }
            let tables = access.store.tables.filter { $0.definition.exportName != nil }
            let described: [JSONValue] = roles.names.map { role in
                var grants = JSONObject()
                for table in tables {
                    let verbs = roles.verbs(of: role, on: table)
                    guard !verbs.isEmpty else { continue }
                    var grant: JSONObject = ["verbs": .array(verbs.sorted().map { .string($0.rawValue) })]
                    let limits = roles.limits(of: role, on: table)
                    if !limits.hide.isEmpty { grant["hide"] = .array(limits.hide.sorted().map { .string($0) }) }
                    if !limits.readOnly.isEmpty { grant["readOnly"] = .array(limits.readOnly.sorted().map { .string($0) }) }
                    grants[TableDirectory.displayName(table)] = .object(grant)
                }
                return ["name": .string(role), "superUser": .bool(roles.isSuperUser(role)), "tables": .object(grants)]
            }
            return json(["declared": true, "roles": .array(described)])
        }
    }

    /// The `roles` member of `body`: a list of role names `roles.yaml` declares (any names without it).
    static func roleNames(_ body: JSONObject, access: TableAccess) throws -> [String]? {
        guard let value = body["roles"] else { return nil }
        guard case .array(let items) = value else { throw Problem(.badRequest, "roles must be a list of role names", code: "badRequest") }
        var names: [String] = []
        for item in items {
            guard case .string(let name) = item else { throw Problem(.badRequest, "roles must be a list of role names", code: "badRequest") }
            if let roles = access.roles, !roles.contains(name), name != Roles.anonymous {
                throw Problem(
                    .badRequest, "roles.yaml declares no role '\(name)'; roles: \(roles.names.joined(separator: ", "))", code: "badRequest")
            }
            names.append(name)
        }
        return names
    }

    /// Runs `work`, answering a ``UserDirectory/Refusal`` as a 400 (409 for a taken name, 404 for a missing user).
    static func refusalsAsProblems(_ work: () async throws -> Void) async throws {
        do {
            try await work()
        } catch let refusal as UserDirectory.Refusal {
            let text = refusal.description
            if text.contains("exists already") { throw Problem(.conflict, text, code: "conflict") }
            if text.hasPrefix("there is no user") { throw Problem(.notFound, text, code: "notFound") }
            throw Problem(.badRequest, text, code: "badRequest")
        }
    }

    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: JSONWriter.encode(value))))
    }
}
