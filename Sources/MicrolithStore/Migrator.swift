import Foundation
import GRDB
import Logging
import MicrolithJSON
import MicrolithSchema

/// Brings a database file in line with the schema at start-up, in one transaction.
struct Migrator {
    let schema: Schema
    /// Other libraries' tables, made and migrated after the store's own.
    let systemTables: [SystemTables]
    let logger: Logger

    /// Fails when a table the data folder holds in one database is declared in another one now:
    /// its records would silently vanish from view. Runs before anything is created or changed.
    static func refuseMovedTables(schema: Schema, directory: String) throws {
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".sqlite") }.sorted()
        for file in files {
            let database = String(file.dropLast(".sqlite".count))
            var configuration = Configuration()
            configuration.readonly = true
            let stored: [(String, Int)]
            do {
                let queue = try DatabaseQueue(path: (directory as NSString).appendingPathComponent(file), configuration: configuration)
                stored = try queue.read { db in
                    guard try db.tableExists("_microlith_tables") else { return [] }
                    return try String.fetchAll(db, sql: "SELECT name FROM _microlith_tables").map { name in
                        (name, try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \"r_\(name)\"") ?? 0)
                    }
                }
                try queue.close()
            } catch {
                throw StoreError(.storage, "cannot read database \(file) in \(directory): \(error)", underlying: error)
            }
            for (name, count) in stored {
                let declared = schema.tables.filter { $0.name == name }
                guard !declared.isEmpty, !declared.contains(where: { $0.database == database }) else { continue }
                throw StoreError(
                    .incompatibleSchema,
                    "table \(name) is declared in database '\(declared[0].database)' but its \(count) record(s) are in database "
                        + "'\(database)' (\(file)); moving a table between databases does not move its data. "
                        + "Declare it with @table(database: \"\(database)\") again, or export and re-import the records")
            }
        }
    }

    /// Creates or migrates the tables of `database`; returns the node id kept in the file.
    func migrate(_ pool: DatabasePool, database: String, tables: [TableLayout], nodeID: String?) throws -> String {
        do {
            return try pool.write { db in
                try createSystemTables(db)
                for tables in try Self.distinct(systemTables) { try migrate(db, tables, database: database) }
                let storedNode = try String.fetchOne(db, sql: "SELECT value FROM _microlith_meta WHERE key = 'node'")
                let node = storedNode ?? nodeID ?? UUID().uuidString.lowercased()
                if storedNode == nil {
                    try db.execute(sql: "INSERT INTO _microlith_meta(key, value) VALUES ('node', ?)", arguments: [node])
                }
                for table in tables { try migrate(db, table) }
                // Statistics for the query planner, when the data changed much since they were
                // taken (or never were): a data folder from before, or an import.
                if try StoreMaintenance.refreshStatisticsIfStale(db) {
                    logger.info("database \(database): index statistics refreshed")
                }
                let known = Set(tables.map(\.name))
                for name in try String.fetchAll(db, sql: "SELECT name FROM _microlith_tables") where !known.contains(name) {
                    logger.warning("table \(name) is no longer in the schema; its data stays in database \(database)")
                }
                return node
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(.storage, "cannot prepare database \(database): \(error)", underlying: error)
        }
    }

    /// Checks, without writing, that `database` was migrated to this schema: every table made,
    /// with the same key, attributes and indexes. Returns the node id kept in the file.
    ///
    /// - Throws: ``StoreError/Code/incompatibleSchema`` naming the first difference.
    func checkMigrated(_ pool: DatabasePool, database: String, tables: [TableLayout]) throws -> String {
        let problem: String?
        let node: String?
        do {
            (problem, node) = try pool.read { db -> (String?, String?) in
                guard try db.tableExists("_microlith_tables"), try db.tableExists("_microlith_meta") else {
                    return ("database \(database) was never opened by a server", nil)
                }
                let node = try String.fetchOne(db, sql: "SELECT value FROM _microlith_meta WHERE key = 'node'")
                for table in tables {
                    guard
                        let row = try Row.fetchOne(
                            db, sql: "SELECT primary_key, signature, scalar_indexes, list_indexes FROM _microlith_tables WHERE name = ?",
                            arguments: [table.name])
                    else { return ("table \(table.name) is not in database \(database) yet", node) }
                    let stored: [String] = [row[0], row[1], row[2], row[3]]
                    let wanted = [
                        primaryKeyDescription(table), table.signature, table.scalarColumns.map(\.attribute.name).joined(separator: ","),
                        table.listTables.map(\.attribute.name).joined(separator: ","),
                    ]
                    if stored != wanted { return ("table \(table.name) in database \(database) has another definition than the schema's", node) }
                    for (attribute, _) in table.scalarColumns {
                        let name = TableLayout.indexName(table: table.name, attribute: attribute.name)
                        guard let partial = try Self.indexIsPartial(db, name), partial != attribute.isSparseIndex else { continue }
                        let (found, declared) = partial ? ("sparse", "whole") : ("whole", "sparse")
                        let problem =
                            "table \(table.name) in database \(database) has a \(found) index of \(attribute.name), "
                            + "the schema a \(declared) one"
                        return (problem, node)
                    }
                }
                return (nil, node)
            }
        } catch {
            throw StoreError(.storage, "cannot read database \(database): \(error)", underlying: error)
        }
        if let problem {
            throw StoreError(
                .incompatibleSchema,
                "\(problem): the data folder is not migrated to this schema.graphql (a start of the server migrates it; "
                    + "'microlith check APP --against DATA_DIR' says what a start would change)")
        }
        return node ?? ""
    }

    private func createSystemTables(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE IF NOT EXISTS _microlith_meta(key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS _microlith_tables(
                    name TEXT PRIMARY KEY NOT NULL, primary_key TEXT NOT NULL, signature TEXT NOT NULL,
                    scalar_indexes TEXT NOT NULL, list_indexes TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS _microlith_changelog(
                    seq INTEGER PRIMARY KEY AUTOINCREMENT, txn INTEGER NOT NULL, tbl TEXT NOT NULL, id NOT NULL,
                    op TEXT NOT NULL, version INTEGER NOT NULL, origin TEXT NOT NULL, record TEXT, stamps TEXT);
                DROP INDEX IF EXISTS _microlith_changelog_version;
                CREATE INDEX IF NOT EXISTS _microlith_changelog_txn ON _microlith_changelog(txn);
                CREATE TABLE IF NOT EXISTS _microlith_tombstones(
                    tbl TEXT NOT NULL, id NOT NULL, version INTEGER NOT NULL, origin TEXT NOT NULL, at INTEGER NOT NULL DEFAULT 0,
                    PRIMARY KEY(tbl, id)) WITHOUT ROWID;
                DROP INDEX IF EXISTS _microlith_tombstones_version;
                CREATE TABLE IF NOT EXISTS _microlith_applied(origin TEXT PRIMARY KEY NOT NULL, seq INTEGER NOT NULL) WITHOUT ROWID;
                CREATE TABLE IF NOT EXISTS _microlith_gaps(
                    origin TEXT NOT NULL, after INTEGER NOT NULL, upto INTEGER NOT NULL, found_at INTEGER NOT NULL, problem TEXT,
                    PRIMARY KEY(origin, after)) WITHOUT ROWID;
                CREATE TABLE IF NOT EXISTS _microlith_parked(
                    id INTEGER PRIMARY KEY, message_id TEXT NOT NULL UNIQUE, subject TEXT NOT NULL, payload BLOB NOT NULL,
                    problem TEXT NOT NULL, parked_at INTEGER NOT NULL);
                """)
        // Change logs made before attribute stamps existed.
        try Self.addColumnIfMissing(db, table: "_microlith_changelog", column: "stamps TEXT")
        try Self.addColumnIfMissing(db, table: "_microlith_applied", column: "version INTEGER NOT NULL DEFAULT 0")
        try Self.addColumnIfMissing(db, table: "_microlith_applied", column: "applied_at INTEGER NOT NULL DEFAULT 0")
        try Self.addColumnIfMissing(db, table: "_microlith_applied", column: "through INTEGER NOT NULL DEFAULT 0")
        try Self.addColumnIfMissing(db, table: "_microlith_tombstones", column: "at INTEGER NOT NULL DEFAULT 0")
        try db.execute(sql: "CREATE INDEX IF NOT EXISTS _microlith_tombstones_at ON _microlith_tombstones(at)")
    }

    /// Adds `column` (a name and a type) to `table` unless it has a column of that name.
    static func addColumnIfMissing(_ db: Database, table: String, column: String) throws {
        let name = String(column.prefix { $0 != " " })
        let columns = try String.fetchAll(db, sql: "SELECT name FROM pragma_table_info(?)", arguments: [table])
        if !columns.contains(name) { try db.execute(sql: "ALTER TABLE \"\(table)\" ADD COLUMN \(column)") }
    }

    /// `declared` without repeats; two different declarations under one owner are refused.
    static func distinct(_ declared: [SystemTables]) throws(StoreError) -> [SystemTables] {
        var seen: [String: SystemTables] = [:]
        var result: [SystemTables] = []
        for tables in declared {
            if let earlier = seen[tables.owner] {
                guard earlier == tables else {
                    throw StoreError(.storage, "two different system table declarations are named '\(tables.owner)'")
                }
                continue
            }
            seen[tables.owner] = tables
            result.append(tables)
        }
        return result
    }

    /// Runs the steps of `tables` that `db` has not taken yet, and records how many it has.
    private func migrate(_ db: Database, _ tables: SystemTables, database: String) throws {
        let recorded = try String.fetchOne(db, sql: "SELECT value FROM _microlith_meta WHERE key = ?", arguments: [tables.metaKey])
        let taken = recorded.flatMap { Int($0) } ?? 0
        guard taken <= tables.migrations.count else {
            throw StoreError(
                .incompatibleSchema,
                "database \(database) has taken \(taken) migration steps of '\(tables.owner)' but this version knows "
                    + "\(tables.migrations.count): it was written by a newer version")
        }
        guard taken < tables.migrations.count else { return }
        for step in tables.migrations[taken...] { try db.execute(sql: step) }
        try db.execute(
            sql: "INSERT OR REPLACE INTO _microlith_meta(key, value) VALUES (?, ?)",
            arguments: [tables.metaKey, String(tables.migrations.count)])
        logger.info("database \(database): \(tables.owner) tables migrated from step \(taken) to \(tables.migrations.count)")
    }

    private func primaryKeyDescription(_ table: TableLayout) -> String {
        "\(table.definition.primaryKey):\(table.definition.primaryKeyAttribute.type)"
    }

    private func migrate(_ db: Database, _ table: TableLayout) throws {
        let row = try Row.fetchOne(
            db, sql: "SELECT primary_key, signature, scalar_indexes, list_indexes FROM _microlith_tables WHERE name = ?",
            arguments: [table.name])
        let scalar = table.scalarColumns.map(\.attribute.name)
        let list = table.listTables.map(\.attribute.name)
        guard let row else {
            try create(db, table)
            try remember(db, table)
            logger.info("table \(table.name): created")
            return
        }
        let storedKey: String = row[0]
        if storedKey != primaryKeyDescription(table) {
            throw StoreError(
                .incompatibleSchema,
                "table \(table.name): the primary key changed from \(storedKey) to \(primaryKeyDescription(table)); "
                    + "existing records cannot be re-keyed automatically: export them, or use a new table name")
        }
        try dropUndeclaredCompositeIndexes(db, table)
        // Tables made before attribute stamps existed.
        try Self.addColumnIfMissing(db, table: table.sqlName, column: "stamps TEXT")
        let storedSignature: String = row[1]
        let storedScalar = Set((row[2] as String).split(separator: ",").map(String.init))
        let storedList = Set((row[3] as String).split(separator: ",").map(String.init))
        var changed = false
        for name in storedScalar where !scalar.contains(name) {
            try db.execute(sql: "DROP INDEX IF EXISTS \"\(TableLayout.indexName(table: table.name, attribute: name))\"")
            try db.execute(sql: "ALTER TABLE \"\(table.sqlName)\" DROP COLUMN \"i_\(name)\"")
            logger.info("table \(table.name): attribute \(name) is no longer indexed")
        }
        for name in storedList where !list.contains(name) {
            try db.execute(sql: "DROP TABLE IF EXISTS \"a_\(table.name)_\(name)\"")
            logger.info("table \(table.name): attribute \(name) is no longer indexed")
        }
        for (attribute, column) in table.scalarColumns where !storedScalar.contains(attribute.name) {
            try db.execute(sql: "ALTER TABLE \"\(table.sqlName)\" ADD COLUMN \"\(column)\"")
            try db.execute(sql: table.createIndexSQL(attribute: attribute, column: column))
            logger.info("table \(table.name): attribute \(attribute.name) indexed")
            changed = true
        }
        for (attribute, side) in table.listTables where !storedList.contains(attribute.name) {
            try createSideTable(db, side)
            logger.info("table \(table.name): attribute \(attribute.name) indexed")
            changed = true
        }
        if changed || storedSignature != table.signature {
            try rebuild(db, table, validate: storedSignature != table.signature)
            let checked = storedSignature != table.signature ? "records checked against the new definition, " : ""
            logger.info("table \(table.name): \(checked)indexes refilled")
        }
        try recreateChangedIndexes(db, table, kept: storedScalar)
        try createCompositeIndexes(db, table)
        try remember(db, table)
    }

    /// Whether the index `name` is partial (`CREATE INDEX … WHERE …`, as a sparse index is made);
    /// `nil` when there is no such index.
    static func indexIsPartial(_ db: Database, _ name: String) throws -> Bool? {
        let sql = try String.fetchOne(db, sql: "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", arguments: [name])
        return sql.map { $0.range(of: " WHERE ", options: .caseInsensitive) != nil }
    }

    /// Builds again the index of each attribute indexed before (`kept`) whose `sparse:` setting
    /// changed: SQLite cannot turn an index partial or whole in place, and fills a new one from
    /// the column, which holds every record's value already.
    private func recreateChangedIndexes(_ db: Database, _ table: TableLayout, kept: Set<String>) throws {
        for (attribute, column) in table.scalarColumns where kept.contains(attribute.name) {
            let name = TableLayout.indexName(table: table.name, attribute: attribute.name)
            if let partial = try Self.indexIsPartial(db, name) {
                guard partial != attribute.isSparseIndex else { continue }
                try db.execute(sql: "DROP INDEX \"\(name)\"")
            }
            try db.execute(sql: table.createIndexSQL(attribute: attribute, column: column))
            // Dropping the index dropped its statistics: the planner's estimates need them back.
            if try db.tableExists("sqlite_stat1") { try StoreMaintenance.analyze(db, index: name) }
            logger.info(
                "table \(table.name): index of \(attribute.name) rebuilt \(attribute.isSparseIndex ? "sparse (records without a value left out)" : "whole")"
            )
        }
    }

    private func create(_ db: Database, _ table: TableLayout) throws {
        var columns = ["id PRIMARY KEY NOT NULL", "data TEXT NOT NULL", "version INTEGER NOT NULL", "origin TEXT NOT NULL", "stamps TEXT"]
        columns += table.scalarColumns.map { "\"\($0.column)\"" }
        try db.execute(sql: "CREATE TABLE \"\(table.sqlName)\"(\(columns.joined(separator: ", "))) WITHOUT ROWID")
        for (attribute, column) in table.scalarColumns {
            try db.execute(sql: table.createIndexSQL(attribute: attribute, column: column))
        }
        for (_, side) in table.listTables { try createSideTable(db, side) }
        try createCompositeIndexes(db, table)
    }

    /// Creates the declared composite indexes that do not exist yet (SQLite fills a new one from
    /// the index columns, which hold every record already).
    private func createCompositeIndexes(_ db: Database, _ table: TableLayout) throws {
        let existing = try compositeIndexNames(db, table)
        for (attributes, name) in table.compositeIndexes where !existing.contains(name) {
            let columns = attributes.map { "\"\(table.column(for: $0) ?? "i_\($0)")\"" }.joined(separator: ", ")
            try db.execute(sql: "CREATE INDEX \"\(name)\" ON \"\(table.sqlName)\"(\(columns))")
            logger.info("table \(table.name): composite index on \(attributes.joined(separator: ", ")) created")
        }
    }

    /// Drops the composite indexes the schema no longer declares (before any column they cover goes).
    private func dropUndeclaredCompositeIndexes(_ db: Database, _ table: TableLayout) throws {
        let declared = Set(table.compositeIndexes.map(\.name))
        for name in try compositeIndexNames(db, table) where !declared.contains(name) {
            try db.execute(sql: "DROP INDEX \"\(name)\"")
            logger.info("table \(table.name): composite index \(name) dropped (no longer declared)")
        }
    }

    private func compositeIndexNames(_ db: Database, _ table: TableLayout) throws -> Set<String> {
        let prefix = TableLayout.compositeIndexPrefix(table: table.name)
        let names = try String.fetchAll(
            db, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?", arguments: [table.sqlName])
        return Set(names.filter { $0.hasPrefix(prefix) })
    }

    private func createSideTable(_ db: Database, _ name: String) throws {
        try db.execute(sql: "CREATE TABLE \"\(name)\"(value NOT NULL, id NOT NULL, PRIMARY KEY(value, id)) WITHOUT ROWID")
        try db.execute(sql: "CREATE INDEX \"\(name)_id\" ON \"\(name)\"(id)")
    }

    private func remember(_ db: Database, _ table: TableLayout) throws {
        try db.execute(
            sql: """
                INSERT OR REPLACE INTO _microlith_tables(name, primary_key, signature, scalar_indexes, list_indexes)
                VALUES (?, ?, ?, ?, ?)
                """,
            arguments: [
                table.name, primaryKeyDescription(table), table.signature,
                table.scalarColumns.map(\.attribute.name).joined(separator: ","),
                table.listTables.map(\.attribute.name).joined(separator: ","),
            ])
    }

    /// Refills every index from the stored records; with `validate`, first checks that each
    /// record fits the new definition.
    private func rebuild(_ db: Database, _ table: TableLayout, validate: Bool) throws {
        let rows = try Row.fetchCursor(db, sql: "SELECT id, data FROM \"\(table.sqlName)\"")
        var updates: [(RecordID, JSONObject)] = []
        while let row = try rows.next() {
            guard let id = TableLayout.recordID(row[0]) else { continue }
            let text: String = row[1]
            guard case .object(let record) = try JSONParser.parse(text) else { continue }
            if validate {
                do {
                    _ = try RecordValidator.validate(record, table: table.definition, schema: schema)
                } catch {
                    throw StoreError(
                        .incompatibleSchema,
                        "table \(table.name): record \(id) does not fit the new schema: \(error.description); "
                            + "fix the record or the schema, then restart",
                        attribute: error.attribute)
                }
            }
            updates.append((id, record))
        }
        for (id, record) in updates {
            if !table.scalarColumns.isEmpty {
                let assignments = table.scalarColumns.map { "\"\($0.column)\" = ?" }.joined(separator: ", ")
                var values = table.scalarColumns.map { TableLayout.indexValue(record[$0.attribute.name]) }
                values.append(TableLayout.keyValue(id))
                try db.execute(
                    sql: "UPDATE \"\(table.sqlName)\" SET \(assignments) WHERE id = ?", arguments: StatementArguments(values))
            }
            try table.writeListIndexes(db, id: id, record: record)
        }
    }
}
