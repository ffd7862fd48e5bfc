public import MicrolithStore

extension SystemTables {
    /// The users who may sign in: name, password hash (``PasswordHash``) and roles (comma-separated);
    /// the keys that sign access tokens and the digests of refresh tokens (``TokenIssuer``).
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
            """,
            """
            CREATE TABLE IF NOT EXISTS _microlith_signing_keys(
                kid TEXT PRIMARY KEY NOT NULL,
                secret BLOB NOT NULL,
                created INTEGER NOT NULL
            ) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS _microlith_refresh_tokens(
                digest TEXT PRIMARY KEY NOT NULL,
                user TEXT NOT NULL,
                created INTEGER NOT NULL,
                expires INTEGER NOT NULL
            ) WITHOUT ROWID;
            CREATE INDEX IF NOT EXISTS _microlith_refresh_tokens_user ON _microlith_refresh_tokens(user)
            """,
        ])
}
