import Foundation
package import GRDB
public import Logging
import MicrolithJSON
public import MicrolithSchema
import NIOCore
import Synchronization

/// The embedded store: one SQLite file (WAL mode) per database, a single group-committing
/// writer per file, a change log written in the same transaction as every write, and a
/// memory-bounded record cache in front.
public final class Store: Sendable {
    /// One SQLite file.
    final class DatabaseHandle: Sendable {
        let name: String
        let pool: DatabasePool
        /// The latest outcome of writes, for readiness.
        let health = WriteHealth()
        // Set once, right after the store exists (the writer calls back into it).
        let writerBox = Mutex<GroupCommitWriter?>(nil)

        let inlineReaders: InlineReaders

        init(name: String, pool: DatabasePool, inlineReaders: InlineReaders) {
            self.name = name
            self.pool = pool
            self.inlineReaders = inlineReaders
        }

        var writer: GroupCommitWriter {
            get throws(StoreError) {
                guard let w = writerBox.withLock({ $0 }) else { throw StoreError(.closed, "the store is closed") }
                return w
            }
        }
    }

    /// The schema the store was opened with.
    public let schema: Schema
    public let configuration: StoreConfiguration
    /// This node's name.
    public let nodeID: String
    /// The clock that versions every write.
    public let clock: HybridLogicalClock
    /// The record cache.
    public let cache: RecordCache
    /// Every table, in schema order; ``TableLayout/index`` is the position here.
    public let tables: [TableLayout]
    /// ``tables``' positions by GraphQL type name (code names its tables so on every read).
    private let tableIndexByTypeName: [String: Int]
    let databases: [String: DatabaseHandle]
    /// Held shared while the databases are open (``DataFolderLock``).
    let folderLock: DataFolderLock
    /// Whether ``close()`` was called.
    private let closed = Mutex(false)
    /// The names of the store's databases: `data` first when there is one, then the others sorted.
    public let databaseNames: [String]
    let logger: Logger
    private let listeners = Mutex<[@Sendable ([Change]) -> Void]>([])
    /// Listeners by channel (``listen(_:_:)``).
    let channelListeners = Mutex<[String: [@Sendable (String) -> Void]]>([:])

    private init(
        schema: Schema, configuration: StoreConfiguration, nodeID: String, tables: [TableLayout], databases: [String: DatabaseHandle],
        folderLock: DataFolderLock, logger: Logger
    ) {
        self.folderLock = folderLock
        self.schema = schema
        self.configuration = configuration
        self.nodeID = nodeID
        self.clock = HybridLogicalClock(wallClock: configuration.wallClock)
        self.cache = RecordCache(limitBytes: configuration.cacheBytes)
        self.tables = tables
        self.tableIndexByTypeName = Dictionary(tables.enumerated().map { ($1.definition.typeName, $0) }, uniquingKeysWith: { first, _ in first })
        self.databases = databases
        self.databaseNames = databases.keys.sorted { a, b in a == Schema.defaultDatabase || (b != Schema.defaultDatabase && a < b) }
        self.logger = logger
    }

    /// Opens (creating or migrating as needed) the databases of `schema` under
    /// `configuration.directory`.
    ///
    /// New tables and newly indexed attributes are added and filled from existing records.
    /// A change existing data cannot follow (another primary key, records that no longer fit
    /// the declared types) fails with ``StoreError/Code/incompatibleSchema`` and a message naming
    /// the table, attribute and record; nothing is changed in that case.
    public static func open(
        schema: Schema, configuration: StoreConfiguration, logger: Logger = Logger(label: "microlith.store")
    ) throws
        -> Store
    {
        if configuration.readOnly {
            guard FileManager.default.fileExists(atPath: configuration.directory) else {
                throw StoreError(.storage, "there is no data folder \(configuration.directory)")
            }
        } else {
            do {
                try FileManager.default.createDirectory(atPath: configuration.directory, withIntermediateDirectories: true)
            } catch {
                throw StoreError(.storage, "cannot create the data folder \(configuration.directory): \(error)", underlying: error)
            }
        }
        let folderLock = try DataFolderLock(directory: configuration.directory, mode: configuration.exclusiveAccess ? .exclusive : .shared)
        let layouts = schema.tables.enumerated().map { TableLayout(definition: $0.element, index: $0.offset) }
        try Migrator.refuseMovedTables(schema: schema, directory: configuration.directory)
        var handles: [String: DatabaseHandle] = [:]
        var nodeID = configuration.nodeID
        let names = schema.databases.isEmpty ? [Schema.defaultDatabase] : schema.databases
        for name in names {
            var config = Configuration()
            config.busyMode = .timeout(TimeInterval(max(0, configuration.busyTimeoutMilliseconds)) / 1000)
            config.maximumReaderCount = 8
            let synchronous = configuration.durability == .full ? "FULL" : "NORMAL"
            let memoryMap = configuration.memoryMapBytes
            config.prepareDatabase { db in
                try db.execute(sql: "PRAGMA synchronous = \(synchronous)")
                try db.execute(sql: "PRAGMA mmap_size = \(memoryMap)")
            }
            let path = (configuration.directory as NSString).appendingPathComponent("\(name).sqlite")
            if configuration.readOnly {
                guard FileManager.default.fileExists(atPath: path) else {
                    throw StoreError(
                        .storage, "there is no database \(name) in \(configuration.directory) (no \(name).sqlite): nothing has served it yet")
                }
                config.readonly = true
            }
            let pool: DatabasePool
            do {
                pool = try DatabasePool(path: path, configuration: config)
            } catch {
                throw StoreError(.storage, "cannot open database \(path): \(error)", underlying: error)
            }
            let tablesHere = layouts.filter { $0.definition.database == name }
            let migrator = Migrator(schema: schema, systemTables: configuration.systemTables, logger: logger)
            let id =
                configuration.readOnly
                ? try migrator.checkMigrated(pool, database: name, tables: tablesHere)
                : try migrator.migrate(pool, database: name, tables: tablesHere, nodeID: nodeID)
            if nodeID == nil { nodeID = id }
            // A read-only store shares its files with a writer elsewhere, whose commits this
            // process does not see: its reads start a transaction each.
            let readers = InlineReaders(limit: 8, keepsSnapshots: !configuration.readOnly) {
                var readOnly = Configuration()
                readOnly.readonly = true
                readOnly.busyMode = .immediateError
                readOnly.allowsUnsafeTransactions = true
                readOnly.prepareDatabase { db in try db.execute(sql: "PRAGMA mmap_size = \(memoryMap)") }
                return try DatabaseQueue(path: path, configuration: readOnly)
            }
            handles[name] = DatabaseHandle(name: name, pool: pool, inlineReaders: readers)
        }
        let store = Store(
            schema: schema, configuration: configuration, nodeID: nodeID ?? UUID().uuidString.lowercased(), tables: layouts,
            databases: handles, folderLock: folderLock, logger: logger)
        // The clock starts past every version the files hold (some may be other nodes', ahead of
        // this node's wall clock, or this node's own from before its clock was set back).
        for (name, handle) in handles {
            let tablesHere = layouts.filter { $0.definition.database == name }
            do {
                store.clock.observe(try handle.pool.read { db in try highestVersion(db, tables: tablesHere) })
            } catch {
                throw StoreError(.storage, "cannot read the versions of database \(name): \(error)", underlying: error)
            }
        }
        for handle in handles.values where !configuration.readOnly {
            let writer = GroupCommitWriter(
                name: handle.name, pool: handle.pool, maximumBatch: configuration.maximumBatch,
                makeTransaction: { [unowned store] db in WriteTransaction(db: db, store: store) },
                committed: { [unowned store, name = handle.name] txns in store.committed(txns, database: name) },
                ended: { [readers = handle.inlineReaders] in readers.writerCommitted() })
            handle.writerBox.withLock { $0 = writer }
        }
        return store
    }

    /// The highest version (or transaction id) the database `db` holds: in its records, its
    /// tombstones and its change log.
    static func highestVersion(_ db: Database, tables: [TableLayout]) throws -> Int64 {
        var parts = [
            "SELECT MAX(version) AS v FROM _microlith_changelog", "SELECT MAX(txn) FROM _microlith_changelog",
            "SELECT MAX(version) FROM _microlith_tombstones",
        ]
        parts += tables.map { "SELECT MAX(version) FROM \"\($0.sqlName)\"" }
        return try Int64.fetchOne(db, sql: "SELECT MAX(v) FROM (\(parts.joined(separator: " UNION ALL ")))") ?? 0
    }

    /// Throws unless every database is open, answers a read and takes writes.
    ///
    /// Whether writes go through is known from the writes themselves while some are under way
    /// (the latest one to finish failed with ``StoreError/Code/busy`` or
    /// ``StoreError/Code/storage``: not ready). When none is, a probe takes the write lock on the
    /// writer's own connection and releases it at once (`BEGIN IMMEDIATE`, `ROLLBACK`: nothing
    /// is written), waiting at most ``readyProbeMilliseconds`` for another connection to let go.
    /// The error thrown is a ``StoreError`` whose message names the database.
    public func checkReady() async throws {
        for (name, handle) in databases.sorted(by: { $0.key < $1.key }) {
            _ = try handle.writer
            do {
                _ = try await read(database: name) { db in try Int.fetchOne(db, sql: "SELECT 1") }
            } catch {
                throw StoreError(.storage, "database '\(name)' does not answer reads", underlying: error)
            }
            try await probeWrites(handle)
        }
    }

    /// The longest a readiness probe waits for the write lock: 200 ms, or the busy timeout when
    /// that is shorter.
    public var readyProbeMilliseconds: Int { min(200, max(0, configuration.busyTimeoutMilliseconds)) }

    private func probeWrites(_ handle: DatabaseHandle) async throws {
        let (inFlight, failure) = handle.health.snapshot
        if inFlight > 0 {
            if let failure { throw Self.describe(failure, database: handle.name) }
            return
        }
        let probe = readyProbeMilliseconds
        let configured = max(0, configuration.busyTimeoutMilliseconds)
        do {
            try await handle.pool.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA busy_timeout = \(probe)")
                defer { try? db.execute(sql: "PRAGMA busy_timeout = \(configured)") }
                try db.inTransaction(.immediate) { .rollback }
            }
        } catch {
            let found = StoreError.classify(error) ?? StoreError(.storage, "the write probe failed", underlying: error)
            handle.health.probed(failure: found)
            throw Self.describe(found, database: handle.name)
        }
        handle.health.probed(failure: nil)
    }

    /// `failure` with a message naming `database`, for readiness answers and logs.
    private static func describe(_ failure: StoreError, database: String) -> StoreError {
        let what = failure.code == .busy ? "its write lock is held by another connection" : "writes to it fail"
        return StoreError(failure.code, "database '\(database)' does not take writes: \(what)", underlying: failure.underlying ?? failure)
    }

    /// Stops accepting writes, lets queued ones finish, and closes the files.
    ///
    /// Call it once, after everything that uses the store has stopped (in a server, the last
    /// service of the lifecycle to end does); later calls do nothing.
    public func close() {
        for handle in databases.values {
            let writer = handle.writerBox.withLock { w -> GroupCommitWriter? in
                defer { w = nil }
                return w
            }
            writer?.close()
            handle.inlineReaders.close()
            try? handle.pool.close()
        }
        folderLock.release()
        closed.withLock { $0 = true }
    }

    /// Whether ``close()`` has been called.
    public var isClosed: Bool {
        closed.withLock { $0 }
    }

    // MARK: Tables

    /// The exported table whose REST name is `exportName`.
    public func table(exportName: String) -> TableLayout? {
        tables.first { $0.definition.exportName == exportName }
    }

    /// The table declared by the GraphQL type `typeName`.
    public func table(typeName: String) -> TableLayout? {
        tableIndexByTypeName[typeName].map { tables[$0] }
    }

    /// The table `name` of `database`.
    public func table(name: String, database: String = Schema.defaultDatabase) -> TableLayout? {
        tables.first { $0.definition.name == name && $0.definition.database == database }
    }

    /// The table `name` names as configuration files and code may name it: its export name, its
    /// GraphQL type name, or its table name (in the default database), tried in that order.
    public func table(anyName name: String) -> TableLayout? {
        table(exportName: name) ?? table(typeName: name) ?? table(name: name)
    }

    // MARK: Reads

    /// The record `id` as the cache knows it, without touching SQLite; `nil` when the cache does not know.
    @inline(__always)
    public func cachedGet(_ table: TableLayout, _ id: RecordID) -> CacheEntry? {
        if let observer = ReadObservation.observer { observer.willRead(table, id: id) }
        let entry = cache.lookup(table: table.index, id: id)
        if let expiration = table.definition.expiration, case .present(let record) = entry, isExpired(record, expiration: expiration) {
            return .absent
        }
        return entry
    }

    /// The smallest version a record of a table expiring after `expiration` seconds may have at
    /// `now` (milliseconds since 1970) and still be live.
    package static func versionCutoff(expiration: Int, now: Int64) -> Int64 {
        (now - Int64(expiration) * 1000) << 16
    }

    /// Whether `record` is past its table's `@table(expiration:)`.
    func isExpired(_ record: CachedRecord, expiration: Int) -> Bool {
        record.version < Self.versionCutoff(expiration: expiration, now: configuration.wallClock())
    }

    /// Removes the expired records of every `@table(expiration:)` table now, instead of waiting
    /// for the background sweep; returns how many were removed.
    @discardableResult
    public func sweepExpired() async throws -> Int {
        var removed = 0
        for table in tables where table.definition.expiration != nil {
            removed += try await StoreMaintenance.sweep(self, table: table)
        }
        return removed
    }

    /// The committed record `id`, from the cache or else from SQLite (filling the cache).
    public func get(_ table: TableLayout, _ id: RecordID) async throws -> CachedRecord? {
        if let entry = cachedGet(table, id) {
            if case .present(let r) = entry { return r }
            return nil
        }
        let sequence = cache.readSequence()
        // One indexed row: cheaper to read here than to hop to a reader's queue and back.
        let found = try await readInline(database: table.definition.database) { db in try Store.fetch(db, table, id) }
        cache.fill(table: table.index, id: id, entry: found.map(CacheEntry.present) ?? .absent, readSequence: sequence)
        if let found, let expiration = table.definition.expiration, isExpired(found, expiration: expiration) { return nil }
        return found
    }

    /// Runs `work` on a read-only snapshot of `database` (never waits on writes).
    package func read<T: Sendable>(database: String, _ work: @escaping @Sendable (Database) throws -> T) async throws -> T {
        guard let handle = databases[database] else { throw StoreError(.unknownTable, "no database named \(database)") }
        return try await handle.pool.read(work)
    }

    /// Runs `work` on a read-only snapshot of `database`, on the calling thread when a connection
    /// for that is free (never waits on writes, never waits for a connection).
    ///
    /// ``read(database:_:)`` hands the work to a reader's queue and resumes the caller when it is
    /// done: two thread switches, which cost more than a point read or a query an index bounds.
    /// Those run here instead, on connections of their own (``InlineReaders``); when all of them
    /// are in use, or the work needs more SQLite work than a small budget allows (it is
    /// interrupted and started again), it goes through ``read(database:_:)`` after all. `work`
    /// must be safe to run twice. Work known to grow with the data (a scan) should use
    /// ``read(database:_:)`` directly, so it does not hold up the caller's event loop.
    package func readInline<T: Sendable>(database: String, _ work: @escaping @Sendable (Database) throws -> T) async throws -> T {
        guard let handle = databases[database] else { throw StoreError(.unknownTable, "no database named \(database)") }
        if let value = try handle.inlineReaders.read(work) { return value }
        return try await handle.pool.read(work)
    }

    /// Reads one record with a connection the caller holds.
    package static func fetch(_ db: Database, _ table: TableLayout, _ id: RecordID) throws -> CachedRecord? {
        // A key outside the canonical form names no record (SQLite would cut it at a NUL).
        guard id.isCanonical else { return nil }
        let row = try Row.fetchOne(
            db.cachedStatement(sql: "SELECT data, version FROM \"\(table.sqlName)\" WHERE id = ?"),
            arguments: [TableLayout.keyValue(id)])
        guard let row else { return nil }
        return try decode(id: id, text: row[0], version: row[1])
    }

    /// Decodes a stored record.
    package static func decode(id: RecordID, text: String, version: Int64) throws -> CachedRecord {
        var text = text
        let record = try text.withUTF8 { bytes in try JSONParser.parse(bytes) }
        guard case .object(let object) = record else {
            throw StoreError(.storage, "stored record \(id) is not a JSON object")
        }
        return CachedRecord(id: id, record: object, json: ByteBuffer(string: text), version: version)
    }

    // MARK: Writes

    /// Runs `work` in a write transaction of `database` and returns once it has committed
    /// durably. Writes from concurrent callers share commits (group commit). When `work`
    /// throws, none of its writes happen and the error is rethrown.
    public func write<T: Sendable>(
        database: String = Schema.defaultDatabase, _ work: @escaping @Sendable (WriteTransaction) throws -> T
    ) async throws -> T {
        try await write(database: database, replayable: false, work)
    }

    /// ``write(database:_:)`` for `work` that touches nothing but the transaction it is given
    /// (`replayable`): the writer may then run it without a savepoint of its own, and run it
    /// again should the transaction have to be rolled back.
    package func write<T: Sendable>(
        database: String = Schema.defaultDatabase, replayable: Bool, _ work: @escaping @Sendable (WriteTransaction) throws -> T
    ) async throws -> T {
        if Spans.enabled {
            return try await Spans.measure("store.write", attributes: [("db.system", "sqlite"), ("db.name", database)]) {
                try await untracedWrite(database: database, replayable: replayable, work)
            }
        }
        return try await untracedWrite(database: database, replayable: replayable, work)
    }

    /// ``write(database:replayable:_:)`` without its span.
    private func untracedWrite<T: Sendable>(
        database: String, replayable: Bool, _ work: @escaping @Sendable (WriteTransaction) throws -> T
    ) async throws -> T {
        guard let handle = databases[database] else { throw StoreError(.unknownTable, "no database named \(database)") }
        if configuration.readOnly { throw StoreError(.closed, "the store was opened read-only: it takes no writes") }
        let writer = try handle.writer
        handle.health.begin()
        let value: T
        do {
            value = try await writer.submit(replayable: replayable, work)
        } catch {
            // A held lock or an unwritable file says something about the database: remember it
            // (for readiness) and report it as such; the job's own errors say nothing of the kind.
            if let failure = StoreError.classify(error), failure.isDatabaseFailure {
                handle.health.finish(failure: failure)
                throw failure
            }
            handle.health.finish(failure: nil, recordsOutcome: false)
            throw error
        }
        handle.health.finish(failure: nil)
        return value
    }

    /// Registers a function called after every commit with its changes, in commit order.
    public func onCommit(_ listener: @escaping @Sendable ([Change]) -> Void) {
        listeners.withLock { $0.append(listener) }
    }

    private func committed(_ transactions: [WriteTransaction], database: String) {
        if transactions.contains(where: { !$0.notifications.isEmpty }) { tellListeners(transactions, database: database) }
        var cacheChanges: [(table: Int, id: RecordID, entry: CacheEntry)] = []
        var all: [Change] = []
        for txn in transactions {
            for c in txn.changes {
                cacheChanges.append((c.table, c.id, c.record.map(CacheEntry.present) ?? .absent))
                all.append(c)
            }
        }
        guard !all.isEmpty else { return }
        cache.apply(cacheChanges)
        for listener in listeners.withLock({ $0 }) { listener(all) }
    }
}
