import MicrolithSchema
public import MicrolithStore

/// The roles of an application (its `roles.yaml`): for each role, what it may do with each table.
/// Deny by default: a verb a role is not granted on a table is refused, and a table a role does not
/// name is closed to it; a role marked `super_user` may do everything, and so may the role named
/// `super_user` unless the file declares it otherwise.
public struct Roles: Sendable {
    /// The role of every request without credentials.
    public static let anonymous = "anonymous"
    /// The role that may do everything, declared or not (the first user made from the environment holds it).
    public static let superUser = "super_user"

    /// One role's grants, as declared.
    public struct Declaration: Sendable, Equatable {
        /// The role's name.
        public var name: String
        /// Whether the role may do everything with every table.
        public var superUser: Bool
        /// Verbs by table (export name, type name or table name); `*` stands for every table the
        /// role does not name otherwise.
        public var tables: [(table: String, verbs: Set<TableVerb>)]
        /// Attribute limits by table (named as in ``tables``).
        public var attributes: [String: AttributeLimits]

        public init(
            name: String, superUser: Bool = false, tables: [(table: String, verbs: Set<TableVerb>)] = [],
            attributes: [String: AttributeLimits] = [:]
        ) {
            self.name = name
            self.superUser = superUser
            self.tables = tables
            self.attributes = attributes
        }

        public static func == (lhs: Declaration, rhs: Declaration) -> Bool {
            lhs.name == rhs.name && lhs.superUser == rhs.superUser && lhs.tables.map(\.table) == rhs.tables.map(\.table)
                && lhs.tables.map(\.verbs) == rhs.tables.map(\.verbs) && lhs.attributes == rhs.attributes
        }
    }

    /// What one role may not do with some attributes of one table.
    public struct AttributeLimits: Sendable, Equatable {
        /// Attributes never shown to the role: dropped from what it reads (REST, subscriptions), and
        /// a query may not filter or sort on them. Not writable either.
        public var hide: Set<String>
        /// Attributes the role reads but may not write: a write naming one is refused.
        public var readOnly: Set<String>

        public init(hide: Set<String> = [], readOnly: Set<String> = []) {
            self.hide = hide
            self.readOnly = readOnly
        }

        public static let none = AttributeLimits()
    }

    /// Why a declaration cannot be used.
    public struct DeclarationError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// The verbs of each role, by table position.
    private let verbs: [String: [Set<TableVerb>]]
    /// The roles marked `super_user`.
    private let superUsers: Set<String>
    /// The attribute limits of each role, by table position (roles without any are absent).
    private let limits: [String: [AttributeLimits]]

    /// Every declared role's name, sorted.
    public var names: [String] { (Array(verbs.keys) + superUsers).sorted() }

    /// The roles `declarations` describe over `store`'s tables.
    ///
    /// - Throws: ``DeclarationError`` for a table no schema declares or a role declared twice.
    public init(_ declarations: [Declaration], store: Store) throws(DeclarationError) {
        var verbs: [String: [Set<TableVerb>]] = [:]
        var superUsers: Set<String> = []
        var limits: [String: [AttributeLimits]] = [:]
        for declaration in declarations {
            guard verbs[declaration.name] == nil, !superUsers.contains(declaration.name) else {
                throw DeclarationError(description: "role \(declaration.name) is declared twice")
            }
            if declaration.superUser {
                superUsers.insert(declaration.name)
                continue
            }
            var byTable = [Set<TableVerb>?](repeating: nil, count: store.tables.count)
            var everyTable: Set<TableVerb> = []
            for (name, granted) in declaration.tables {
                if name == "*" {
                    everyTable = granted
                    continue
                }
                guard let table = store.table(anyName: name) else {
                    let known = Set(store.tables.map { $0.definition.exportName ?? $0.name }).sorted().joined(separator: ", ")
                    throw DeclarationError(
                        description: "role \(declaration.name) names table '\(name)', which the schema does not declare; tables: \(known)")
                }
                byTable[table.index] = granted
            }
            verbs[declaration.name] = byTable.map { $0 ?? everyTable }
            guard !declaration.attributes.isEmpty else { continue }
            var byTableLimits = [AttributeLimits](repeating: .none, count: store.tables.count)
            for (name, limit) in declaration.attributes {
                guard name != "*" else {
                    throw DeclarationError(description: "role \(declaration.name) limits attributes of '*'; name the table")
                }
                guard let table = store.table(anyName: name) else {
                    throw DeclarationError(
                        description: "role \(declaration.name) limits attributes of table '\(name)', which the schema does not declare")
                }
                let known = Set(table.definition.attributes.map(\.name))
                for attribute in limit.hide.union(limit.readOnly).sorted() where !known.contains(attribute) {
                    throw DeclarationError(
                        description:
                            "role \(declaration.name) limits attribute '\(attribute)' of \(name), which has no such attribute; attributes: \(known.sorted().joined(separator: ", "))"
                    )
                }
                let pk = table.definition.primaryKeyAttribute.name
                if limit.hide.contains(pk) {
                    throw DeclarationError(
                        description: "role \(declaration.name) hides \(name)'s key '\(pk)'; a key cannot be hidden (close the table instead)")
                }
                byTableLimits[table.index] = limit
            }
            limits[declaration.name] = byTableLimits
        }
        if verbs[Self.superUser] == nil { superUsers.insert(Self.superUser) }
        self.verbs = verbs
        self.superUsers = superUsers
        self.limits = limits
    }

    /// Whether a role called `name` is declared.
    public func contains(_ name: String) -> Bool {
        verbs[name] != nil || superUsers.contains(name)
    }

    /// Whether `role` is a super user's: `super_user`, or declared with `super_user: true`.
    public func isSuperUser(_ role: String) -> Bool {
        superUsers.contains(role)
    }

    /// Whether `principal` may `verb` records of `table`: one of its roles grants it.
    public func allows(_ verb: TableVerb, _ table: TableLayout, for principal: Principal) -> Bool {
        principal.roles.contains { role in superUsers.contains(role) || verbs[role]?[table.index].contains(verb) == true }
    }

    /// The attributes of `table` hidden from `principal` when it reads (or, with `verb`, subscribes
    /// to) the table: those every role of its granting the verb hides (none for a super user).
    public func hidden(_ table: TableLayout, for principal: Principal, verb: TableVerb = .read) -> Set<String> {
        limited(table, verb, for: principal) { $0.hide }
    }

    /// The attributes of `table` `principal` may not write in a `verb` (`insert` or `update`): those
    /// every role of its granting the verb hides or makes read-only (none for a super user).
    public func unwritable(_ table: TableLayout, _ verb: TableVerb, for principal: Principal) -> Set<String> {
        limited(table, verb, for: principal) { $0.hide.union($0.readOnly) }
    }

    /// The limit `pick` chooses, intersected over the principal's roles that grant `verb` on `table`.
    private func limited(_ table: TableLayout, _ verb: TableVerb, for principal: Principal, _ pick: (AttributeLimits) -> Set<String>) -> Set<String> {
        guard !limits.isEmpty else { return [] }
        var result: Set<String>?
        for role in principal.roles {
            if superUsers.contains(role) { return [] }
            guard verbs[role]?[table.index].contains(verb) == true else { continue }
            let limit = limits[role].map { pick($0[table.index]) } ?? []
            result = result.map { $0.intersection(limit) } ?? limit
            if result?.isEmpty == true { return [] }
        }
        return result ?? []
    }

    /// The attribute limits `role` has on `table` (none for a super user or an unknown role).
    public func limits(of role: String, on table: TableLayout) -> AttributeLimits {
        limits[role]?[table.index] ?? .none
    }

    /// The verbs `role` has on `table` (every verb for a super user; none for an unknown role).
    public func verbs(of role: String, on table: TableLayout) -> Set<TableVerb> {
        superUsers.contains(role) ? Set(TableVerb.allCases) : verbs[role]?[table.index] ?? []
    }
}
