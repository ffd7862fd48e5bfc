import GRDB
import Logging
import MicrolithSchema

/// The store's background housekeeping: expiring records, trimming the change log and keeping
/// the query planner's statistics current. It runs while ``Store/runMaintenance()`` does (in a
/// server, as a service of its lifecycle, stopped before the store closes).
///
/// - Records of `@table(expiration: seconds)` tables are removed once older than their table's
///   expiration (measured from their last write). Reads of a single record
///   (``Store/get(_:_:)``, ``Store/cachedGet(_:_:)``) hide an expired record at once; the sweep
///   deletes it for good within one interval (a tenth of the shortest expiration, between 1 and
///   60 seconds), through ordinary deletes, so the change log and every subscriber see it.
/// - Change-log entries older than ``StoreConfiguration/changeLogRetentionSeconds`` are deleted
///   every ten minutes (or a tenth of the retention, when that is shorter).
/// - The statistics SQLite keeps about indexes (`sqlite_stat1`, which the query planner reads)
///   are refreshed by `ANALYZE` when a database has taken more writes since the last refresh
///   than ``statisticsThreshold(rows:)`` allows: at start-up (``Migrator``), when the maintenance
///   begins (after a seed), and checked every ``statisticsInterval``, so a bulk load is measured
///   within seconds of ending. `ANALYZE`
///   reads at most ``analysisLimit`` entries per index, so it stays cheap on large tables; its
///   row counts are estimates. (`PRAGMA optimize` is not enough here: SQLite 3.40 analyzes only
///   the tables the calling connection has queried, and the writer's connection rarely does.)
enum StoreMaintenance {
    /// The most records removed per table in one transaction.
    static let batchSize = 500
    /// How often the statistics are checked for staleness.
    static let statisticsInterval = Duration.seconds(5)
    /// `PRAGMA analysis_limit` for `ANALYZE`: index entries read per index.
    static let analysisLimit = 1000

    /// How often a store whose shortest expiration is `seconds` is swept.
    static func interval(forShortestExpiration seconds: Int) -> Duration {
        .seconds(min(60, max(1, seconds / 10)))
    }

    /// Runs the housekeeping of `store` until the calling task is cancelled or the store closes
    /// (noticed within one tick: at most ``statisticsInterval``).
    static func run(_ store: Store) async {
        let expiring = store.tables.filter { $0.definition.expiration != nil }
        let trimEvery = Duration.seconds(max(1, min(600, store.configuration.changeLogRetentionSeconds / 10)))
        let interval =
            expiring.compactMap(\.definition.expiration).min().map { min(Self.interval(forShortestExpiration: $0), trimEvery) } ?? trimEvery
        let databases = Array(store.databases.keys).sorted()
        let logger = store.logger
        let tick = min(interval, Self.statisticsInterval)
        var sinceTrim = Duration.zero
        var sinceSweep = Duration.zero
        var sinceStatistics = Duration.zero
        // Writes made before the maintenance began (a seed, a bulk load) are measured at once.
        guard await refreshStatistics(store, databases: databases) else { return }
        while !Task.isCancelled {
            try? await Task.sleep(for: tick)
            guard !Task.isCancelled, !store.isClosed else { return }
            sinceTrim += tick
            sinceSweep += tick
            sinceStatistics += tick
            if sinceStatistics >= Self.statisticsInterval {
                sinceStatistics = .zero
                guard await refreshStatistics(store, databases: databases) else { return }
            }
            guard sinceSweep >= interval else { continue }
            sinceSweep = .zero
            if sinceTrim >= trimEvery {
                sinceTrim = .zero
                for database in databases {
                    do {
                        try await store.trimChangeLog(database: database)
                    } catch let error as StoreError where error.code == .closed {
                        return
                    } catch {
                        logger.warning("change-log trim of \(database) failed: \(error)")
                    }
                }
            }
            for table in expiring {
                do {
                    _ = try await Self.sweep(store, table: table)
                } catch let error as StoreError where error.code == .closed {
                    return
                } catch {
                    logger.warning("expiry sweep of \(table.name) failed: \(error)")
                }
            }
        }
    }

    /// Refreshes the statistics of `databases` where stale; `false` when the store has closed or
    /// the task is cancelled.
    private static func refreshStatistics(_ store: Store, databases: [String]) async -> Bool {
        for database in databases {
            do {
                try await Self.refreshStatisticsIfStale(store, database: database)
            } catch let error as StoreError where error.code == .closed {
                return false
            } catch is CancellationError {
                return false
            } catch {
                store.logger.warning("statistics refresh of \(database) failed: \(error)")
            }
        }
        return true
    }

    /// How many writes since the last `ANALYZE` make the statistics of a database holding
    /// `rows` records stale: a tenth of them, and at least 1,000.
    static func statisticsThreshold(rows: Int) -> Int {
        max(1000, rows / 10)
    }

    /// Runs `ANALYZE` on `database` when its statistics are stale; returns whether it did.
    ///
    /// The check costs two tiny reads; the refresh goes through the writer like any write.
    @discardableResult
    static func refreshStatisticsIfStale(_ store: Store, database: String) async throws -> Bool {
        let stale = try await store.read(database: database) { db in try statisticsAreStale(db) }
        guard stale else { return false }
        return try await store.write(database: database) { txn in try refreshStatisticsIfStale(txn.db) }
    }

    /// Runs `ANALYZE` when the writes counted by the change log since the last one pass
    /// ``statisticsThreshold(rows:)``; returns whether it did. `db` must be writable.
    @discardableResult
    static func refreshStatisticsIfStale(_ db: Database) throws -> Bool {
        guard try statisticsAreStale(db) else { return false }
        try analyze(db)
        try db.execute(
            sql: "INSERT OR REPLACE INTO _microlith_meta(key, value) VALUES ('analyzed_seq', ?)",
            arguments: [String(try latestSequence(db))])
        return true
    }

    /// `ANALYZE` of the whole database, or of one index (`index`), reading at most
    /// ``analysisLimit`` entries per index.
    static func analyze(_ db: Database, index: String? = nil) throws {
        try db.execute(sql: "PRAGMA analysis_limit = \(analysisLimit)")
        try db.execute(sql: "ANALYZE" + (index.map { " \"\($0)\"" } ?? ""))
    }

    /// Whether the writes since the last `ANALYZE` pass the threshold.
    static func statisticsAreStale(_ db: Database) throws -> Bool {
        let analyzed = try String.fetchOne(db, sql: "SELECT value FROM _microlith_meta WHERE key = 'analyzed_seq'").flatMap { Int64($0) } ?? 0
        let writes = try latestSequence(db) - analyzed
        guard writes > 0 else { return false }
        var rows = 0
        if try db.tableExists("sqlite_stat1") {
            // One row per table with `idx` naming the table itself (the primary key of a
            // WITHOUT ROWID table): its first number is the table's row count.
            let stats = try String.fetchAll(
                db, sql: "SELECT stat FROM sqlite_stat1 WHERE idx = tbl AND tbl IN (SELECT 'r_' || name FROM _microlith_tables)")
            rows = stats.reduce(0) { $0 + (Int($1.split(separator: " ").first ?? "") ?? 0) }
        }
        return writes >= Int64(statisticsThreshold(rows: rows))
    }

    /// The highest change-log sequence ever assigned (0 before the first write).
    private static func latestSequence(_ db: Database) throws -> Int64 {
        try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = '_microlith_changelog'") ?? 0
    }

    /// Deletes the expired records of `table` (all of them, in batches); returns how many.
    static func sweep(_ store: Store, table: TableLayout) async throws -> Int {
        guard let expiration = table.definition.expiration else { return 0 }
        var removed = 0
        while true {
            let cutoff = Store.versionCutoff(expiration: expiration, now: store.configuration.wallClock())
            let ids = try await store.read(database: table.definition.database) { db in
                try Row.fetchAll(
                    db, sql: "SELECT id FROM \"\(table.sqlName)\" WHERE version < ? LIMIT \(batchSize)", arguments: [cutoff]
                ).compactMap { row in TableLayout.recordID(row[0] as DatabaseValue) }
            }
            if ids.isEmpty { return removed }
            removed += try await store.write(database: table.definition.database) { txn in
                var count = 0
                for id in ids where try txn.deleteIfExpired(table, id: id, cutoff: cutoff) { count += 1 }
                return count
            }
            if ids.count < batchSize { return removed }
        }
    }
}

extension Store {
    /// Runs the store's housekeeping until the calling task is cancelled or the store closes:
    /// the expiry sweep of `@table(expiration:)` tables, the change-log trim and the statistics
    /// refresh (see the intervals below). Nothing of it runs while no task runs this.
    ///
    /// ```swift
    /// try await withThrowingDiscardingTaskGroup { group in
    ///     group.addTask { await store.runMaintenance() }
    ///     // … use the store, then cancel the group before closing the store
    /// }
    /// ```
    ///
    /// - Records of `@table(expiration: seconds)` tables are deleted within one interval of
    ///   expiring: a tenth of the shortest expiration, between 1 and 60 seconds.
    /// - Change-log entries older than ``StoreConfiguration/changeLogRetentionSeconds`` are
    ///   deleted every ten minutes (or a tenth of the retention, when that is shorter).
    /// - Index statistics are refreshed when stale: checked when it begins, then every five seconds.
    public func runMaintenance() async {
        await StoreMaintenance.run(self)
    }

    /// Refreshes the index statistics of `database` (`ANALYZE`) when the writes since the last
    /// refresh make them stale, as the background housekeeping does every few seconds; returns
    /// whether it did.
    @discardableResult
    package func refreshStatisticsIfStale(database: String = Schema.defaultDatabase) async throws -> Bool {
        try await StoreMaintenance.refreshStatisticsIfStale(self, database: database)
    }
}
