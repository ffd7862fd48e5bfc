import GRDB
import Logging
import MicrolithSchema
import Synchronization

/// The store's background housekeeping: expiring records and trimming the change log.
///
/// - Records of `@table(expiration: seconds)` tables are removed once older than their table's
///   expiration (measured from their last write). Reads of a single record
///   (``Store/get(_:_:)``, ``Store/cachedGet(_:_:)``) hide an expired record at once; the sweep
///   deletes it for good within one interval (a tenth of the shortest expiration, between 1 and
///   60 seconds), through ordinary deletes, so the change log and every subscriber see it.
/// - Change-log entries older than ``StoreConfiguration/changeLogRetentionSeconds`` are deleted
///   every ten minutes (or a tenth of the retention, when that is shorter).
final class StoreMaintenance: Sendable {
    /// The most records removed per table in one transaction.
    static let batchSize = 500

    private let task = Mutex<Task<Void, Never>?>(nil)

    /// How often a store whose shortest expiration is `seconds` is swept.
    static func interval(forShortestExpiration seconds: Int) -> Duration {
        .seconds(min(60, max(1, seconds / 10)))
    }

    /// Starts the housekeeping of `store` in the background.
    func start(_ store: Store) {
        let expiring = store.tables.filter { $0.definition.expiration != nil }
        let trimEvery = Duration.seconds(max(1, min(600, store.configuration.changeLogRetentionSeconds / 10)))
        let interval =
            expiring.compactMap(\.definition.expiration).min().map { min(Self.interval(forShortestExpiration: $0), trimEvery) } ?? trimEvery
        let databases = Array(store.databases.keys).sorted()
        let logger = store.logger
        task.withLock {
            $0 = Task { [weak store] in
                var sinceTrim = Duration.zero
                while !Task.isCancelled {
                    try? await Task.sleep(for: interval)
                    guard let store, !Task.isCancelled else { return }
                    sinceTrim += interval
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
        }
    }

    /// Stops the housekeeping.
    func stop() {
        task.withLock {
            $0?.cancel()
            $0 = nil
        }
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
