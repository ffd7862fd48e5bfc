import Foundation
public import MicrolithSchema
public import MicrolithStore
public import MicrolithTables
import Yams

/// `roles.yaml` of an app folder: what each role may do with each table.
///
/// ```yaml
/// anonymous:                 # every request without credentials
///   tables:
///     Product: [read, subscribe]
///     Category: read
///     "*": []                # every table not named: nothing (the default too)
/// clerk:
///   tables:
///     Order:                 # verbs and attribute limits
///       verbs: [read, update]
///       hide: [cardNumber]   # never shown to the role, not filterable
///       readOnly: [total]    # shown, not writable
/// admin:
///   super_user: true         # everything with every table
/// ```
///
/// Verbs: `read`, `insert`, `update`, `delete`, `subscribe`, `publish`, or `all`. Tables are named by
/// export name, GraphQL type name or table name. Anything else is an error naming the file, line
/// and column.
public enum RolesFile {
    /// The roles `file` (its text `text`) declares, over `store`'s tables.
    public static func parse(_ text: String, file: String, store: Store) throws -> Roles {
        try build(try declarations(text, file: file), store: store, file: file)
    }

    /// The role declarations of `file` (its text `text`), checked against `schema`'s tables: what
    /// `microlith check` validates without opening the store.
    public static func check(_ text: String, file: String, schema: Schema) throws -> [Roles.Declaration] {
        let declared = try declarations(text, file: file)
        let names = Set(schema.tables.flatMap { [$0.name, $0.typeName, $0.exportName].compactMap { $0 } })
        for declaration in declared {
            for (table, _) in declaration.tables where table != "*" && !names.contains(table) {
                let known = Set(schema.tables.map { $0.exportName ?? $0.name }).sorted().joined(separator: ", ")
                throw RuntimeError(
                    "\(file): role \(declaration.name) names table '\(table)', which the schema does not declare; tables: \(known)")
            }
            for (name, limits) in declaration.attributes {
                guard let table = schema.tables.first(where: { [$0.name, $0.typeName, $0.exportName].contains(name) }) else { continue }
                let known = Set(table.attributes.map(\.name))
                for attribute in limits.hide.union(limits.readOnly).sorted() where !known.contains(attribute) {
                    throw RuntimeError(
                        "\(file): role \(declaration.name) limits attribute '\(attribute)' of \(name), which has no such attribute; attributes: \(known.sorted().joined(separator: ", "))"
                    )
                }
            }
        }
        return declared
    }

    /// The declarations of `file`, as written (table names not checked).
    static func declarations(_ text: String, file: String) throws -> [Roles.Declaration] {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw RuntimeError("\(file): invalid YAML: \(error)")
        }
        func fail(_ node: Node?, _ message: String) -> RuntimeError {
            RuntimeError("\(file)\(node?.mark.map { ":\($0.line):\($0.column)" } ?? ""): \(message)")
        }
        guard let root else { return [] }
        guard let roles = root.mapping else { throw fail(root, "the top level must map role names to their permissions") }
        var declarations: [Roles.Declaration] = []
        for (key, value) in roles {
            guard let name = key.string, !name.isEmpty else { throw fail(key, "a role name must be text") }
            var declaration = Roles.Declaration(name: name)
            guard let body = value.mapping else {
                throw fail(value, "role \(name) must be a mapping with 'tables' (and 'super_user: true' for a role that may do everything)")
            }
            for (field, setting) in body {
                switch field.string {
                case "super_user":
                    guard let flag = setting.bool else { throw fail(setting, "super_user of role \(name) must be true or false") }
                    declaration.superUser = flag
                case "tables":
                    guard let tables = setting.mapping else { throw fail(setting, "tables of role \(name) must map table names to verbs") }
                    for (tableKey, grant) in tables {
                        guard let table = tableKey.string else { throw fail(tableKey, "a table name must be text") }
                        guard let fields = grant.mapping else {
                            declaration.tables.append((table, try readVerbs(grant, role: name, table: table, fail: fail)))
                            continue
                        }
                        // The long form: verbs and attribute limits.
                        var verbs: Set<TableVerb>?
                        var limits = Roles.AttributeLimits()
                        for (key, value) in fields {
                            switch key.string {
                            case "verbs": verbs = try readVerbs(value, role: name, table: table, fail: fail)
                            case "hide": limits.hide = try readNames(value, "hide", role: name, table: table, fail: fail)
                            case "readOnly": limits.readOnly = try readNames(value, "readOnly", role: name, table: table, fail: fail)
                            default:
                                throw fail(
                                    key, "unknown setting '\(key.string ?? "?")' of role \(name) on \(table); it takes 'verbs', 'hide' and 'readOnly'"
                                )
                            }
                        }
                        if table == "*", limits != .none { throw fail(grant, "attribute limits need a table name, not '*'") }
                        guard let verbs else {
                            throw fail(grant, "role \(name) on \(table) needs 'verbs' (an empty list [] grants none)")
                        }
                        declaration.tables.append((table, verbs))
                        if limits != .none { declaration.attributes[table] = limits }
                    }
                default:
                    throw fail(field, "unknown setting '\(field.string ?? "?")' of role \(name); a role takes 'tables' and 'super_user'")
                }
            }
            declarations.append(declaration)
        }
        return declarations
    }

    /// The roles of the app folder at `path` (its `roles.yaml`), or `nil` when it has none.
    public static func load(folder path: String, store: Store) throws -> Roles? {
        let file = (path as NSString).appendingPathComponent("roles.yaml")
        guard let data = FileManager.default.contents(atPath: file) else { return nil }
        return try parse(String(decoding: data, as: UTF8.self), file: file, store: store)
    }

    private static func readVerbs(
        _ node: Node, role: String, table: String, fail: (Node?, String) -> RuntimeError
    ) throws -> Set<TableVerb> {
        let items: [Node]
        if let list = node.sequence {
            items = Array(list)
        } else if node.scalar != nil {
            items = node.null != nil ? [] : [node]
        } else {
            throw fail(node, "the verbs of role \(role) on \(table) must be a list such as [read, subscribe]")
        }
        var verbs: Set<TableVerb> = []
        for item in items {
            guard let word = item.string else { throw fail(item, "a verb must be text") }
            if word == "all" {
                verbs.formUnion(TableVerb.allCases)
            } else if let verb = TableVerb(rawValue: word) {
                verbs.insert(verb)
            } else {
                let known = TableVerb.allCases.map(\.rawValue).joined(separator: ", ")
                throw fail(item, "unknown verb '\(word)' for role \(role) on \(table); verbs: \(known), all")
            }
        }
        return verbs
    }

    private static func readNames(
        _ node: Node, _ setting: String, role: String, table: String, fail: (Node?, String) -> RuntimeError
    ) throws -> Set<String> {
        let items: [Node]
        if let list = node.sequence {
            items = Array(list)
        } else if node.scalar != nil, node.null == nil {
            items = [node]
        } else {
            throw fail(node, "\(setting) of role \(role) on \(table) must be a list of attribute names")
        }
        var names: Set<String> = []
        for item in items {
            guard let word = item.string, !word.isEmpty else { throw fail(item, "an attribute name must be text") }
            names.insert(word)
        }
        return names
    }

    private static func build(_ declarations: [Roles.Declaration], store: Store, file: String) throws -> Roles {
        do {
            return try Roles(declarations, store: store)
        } catch {
            throw RuntimeError("\(file): \(error.description)")
        }
    }
}
