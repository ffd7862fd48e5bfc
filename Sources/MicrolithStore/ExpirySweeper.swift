import GRDB
import Logging
import MicrolithSchema
import Synchronization

/// Removes the records of `@table(expiration: seconds)` tables once they are older than their
/// table's expiration (measured from their last write).
///
/// Reads of a single record (``Store/get(_:_:)``, ``Store/cachedGet(_:_:)``) hide an expired
/// record at once; the sweeper deletes it for good within one sweep interval (a tenth of the
/// shortest expiration, between 1 and 60 seconds), through ordinary deletes, so the change log
/// and every subscriber see the removal.
final class ExpirySweeper: Sendable {
    /// The most records removed per table in one transaction.
    static let batchSize = 500

    private let task = Mutex<Task<Void, Never>?>(nil)

    /// How often a store whose shortest expiration is `seconds` is swept.
    static func interval(forShortestExpiration seconds: Int) -> Duration {
        .seconds(min(60, max(1, seconds / 10)))
    }

    /// Starts sweeping `store` in the background, if any of its tables expire.
    func start(_ store: Store) {
        let expiring = store.tables.filter { $0.definition.expiration != nil }
        guard let shortest = expiring.compactMap(\.definition.expiration).min() else { return }
        let interval = Self.interval(forShortestExpiration: shortest)
        let logger = store.logger
        task.withLock {
            $0 = Task { [weak store] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: interval)
                    guard let store, !Task.isCancelled else { return }
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

    /// Stops sweeping.
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
            let cutoff = Store.versionCutoff(expiration: expiration, now: HybridLogicalClock.systemMilliseconds())
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
