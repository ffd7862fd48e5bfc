public import MicrolithStore

extension SystemTables {
    /// The users who may sign in: name, password hash (``PasswordHash``) and roles (comma-separated).
    /// Kept in every database like every system table; ``UserDirectory`` uses the default one.
    public static let users = SystemTables(
        owner: "users",
        migrations: [
            """
            CREATE TABLE IF NOT EXISTS _microlith_users(
                name TEXT PRIMARY KEY NOT NULL,
                password TEXT NOT NULL,
                roles TEXT NOT NULL,
                created INTEGER NOT NULL,
                updated INTEGER NOT NULL
            ) WITHOUT ROWID
            """
        ])
}
