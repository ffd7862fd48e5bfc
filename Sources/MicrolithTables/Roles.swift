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

        public init(name: String, superUser: Bool = false, tables: [(table: String, verbs: Set<TableVerb>)] = []) {
            self.name = name
            self.superUser = superUser
            self.tables = tables
        }

        public static func == (lhs: Declaration, rhs: Declaration) -> Bool {
            lhs.name == rhs.name && lhs.superUser == rhs.superUser && lhs.tables.map(\.table) == rhs.tables.map(\.table)
                && lhs.tables.map(\.verbs) == rhs.tables.map(\.verbs)
        }
    }

    /// Why a declaration cannot be used.
    public struct DeclarationError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// The verbs of each role, by table position.
    private let verbs: [String: [Set<TableVerb>]]
    /// The roles marked `super_user`.
    private let superUsers: Set<String>

    /// Every declared role's name, sorted.
    public var names: [String] { (Array(verbs.keys) + superUsers).sorted() }

    /// The roles `declarations` describe over `store`'s tables.
    ///
    /// - Throws: ``DeclarationError`` for a table no schema declares or a role declared twice.
    public init(_ declarations: [Declaration], store: Store) throws(DeclarationError) {
        var verbs: [String: [Set<TableVerb>]] = [:]
        var superUsers: Set<String> = []
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
                guard let table = store.table(exportName: name) ?? store.table(typeName: name) ?? store.table(name: name) else {
                    let known = Set(store.tables.map { $0.definition.exportName ?? $0.name }).sorted().joined(separator: ", ")
                    throw DeclarationError(
                        description: "role \(declaration.name) names table '\(name)', which the schema does not declare; tables: \(known)")
                }
                byTable[table.index] = granted
            }
            verbs[declaration.name] = byTable.map { $0 ?? everyTable }
        }
        if verbs[Self.superUser] == nil { superUsers.insert(Self.superUser) }
        self.verbs = verbs
        self.superUsers = superUsers
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

    /// The verbs `role` has on `table` (every verb for a super user; none for an unknown role).
    public func verbs(of role: String, on table: TableLayout) -> Set<TableVerb> {
        superUsers.contains(role) ? Set(TableVerb.allCases) : verbs[role]?[table.index] ?? []
    }
}
