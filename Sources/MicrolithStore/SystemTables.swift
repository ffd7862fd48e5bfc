/// Tables another library keeps in every database of the store, beside the records: the job
/// queue's, for one. The store does not know what they hold; it creates and migrates them when
/// it opens a database, in the transaction that prepares its own tables, so no database is ever
/// open with some of them missing or half made.
///
/// Each step of ``migrations`` runs once per database, in order. How many steps a database has
/// taken is kept in it (`_microlith_meta`, key `migrations.<owner>`), so a later version of the
/// library appends steps and never changes one that has shipped. A database that has taken more
/// steps than the library declares (written by a newer version) is refused.
///
/// ```swift
/// extension SystemTables {
///     static let audit = SystemTables(owner: "audit", migrations: [
///         "CREATE TABLE IF NOT EXISTS _audit(seq INTEGER PRIMARY KEY, what TEXT NOT NULL)",
///         "ALTER TABLE _audit ADD COLUMN who TEXT",
///     ])
/// }
/// var configuration = StoreConfiguration(directory: "data")
/// configuration.systemTables.append(.audit)
/// ```
public struct SystemTables: Sendable, Hashable {
    /// The library that owns the tables; unique among the store's ``StoreConfiguration/systemTables``.
    public let owner: String
    /// SQL scripts (one or more statements each), run in order, each once per database.
    ///
    /// Tables that existed before their owner declared them here start with `CREATE … IF NOT
    /// EXISTS`, so the first step leaves a database that already has them as it is.
    public let migrations: [String]

    /// The tables of `owner`, made by `migrations`.
    public init(owner: String, migrations: [String]) {
        self.owner = owner
        self.migrations = migrations
    }

    /// The key under which a database records how many of `owner`'s steps it has taken.
    var metaKey: String { "migrations.\(owner)" }
}
