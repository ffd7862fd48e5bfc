public import MicrolithStore

extension SystemTables {
    /// The tables of the job queue and the scheduler, in every database: `_microlith_jobs` (one
    /// row per job, in a ``JobRecord/State``) and `_microlith_schedules` (each schedule's next due
    /// time; the scheduler uses the first database's).
    ///
    /// A store whose jobs run, are enqueued or are shown declares them in
    /// ``StoreConfiguration/systemTables``; the runtime's configuration does. Databases made
    /// before the declaration existed hold these tables already: the first step leaves them as
    /// they are.
    public static let jobs = SystemTables(
        owner: "jobs",
        migrations: [
            """
            CREATE TABLE IF NOT EXISTS _microlith_jobs(
                id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, payload TEXT NOT NULL,
                state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT NULL,
                run_at INTEGER NOT NULL, lease_until INTEGER, owner TEXT, last_error TEXT,
                created INTEGER NOT NULL, updated INTEGER NOT NULL);
            CREATE INDEX IF NOT EXISTS _microlith_jobs_due ON _microlith_jobs(state, run_at);
            CREATE TABLE IF NOT EXISTS _microlith_schedules(
                name TEXT PRIMARY KEY NOT NULL, next_run INTEGER NOT NULL, last_run INTEGER, spec TEXT NOT NULL);
            """
        ])
}
