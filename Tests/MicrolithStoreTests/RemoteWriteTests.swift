import GRDB
import MicrolithJSON
import MicrolithSchema
import MicrolithStore
import Synchronization
import Testing

/// Writes made on other nodes, applied here: last writer wins on (version, origin), tombstones,
/// idempotence, and what the change log and listeners see.
@Suite("Store: remote writes")
struct RemoteWriteTests {
    /// The test's "now", read once, so versions made from it keep their order however slowly
    /// the test runs.
    let base = HybridLogicalClock.systemMilliseconds()

    /// A version `offset` milliseconds from the test's start.
    func version(_ offset: Int64 = 0) -> Int64 {
        (base + offset) << 16
    }

    func remote(
        _ table: TableLayout, _ id: String, _ operation: Change.Operation = .put, version: Int64, origin: String = "node-b",
        _ record: JSONObject? = nil
    ) -> RemoteWrite {
        var body = record
        if operation != .delete && body == nil { body = ["id": .string(id), "title": .string("from \(origin)")] }
        return RemoteWrite(table: table, id: .string(id), operation: operation, version: version, origin: origin, record: body)
    }

    func apply(_ store: Store, _ write: RemoteWrite) async throws -> Bool {
        try await store.write { txn in try txn.apply(write) }
    }

    @Test func aNewerRemoteWriteTakesEffectWithItsOwnVersionAndOrigin() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")
        let seen = Mutex<[Change]>([])
        store.onCommit { changes in seen.withLock { $0 += changes } }
        try await store.put(todo, .string("t1"), ["title": "local"])
        let v = version(2000)
        #expect(try await apply(store, remote(todo, "t1", version: v, ["title": "remote", "tags": ["x", "y"]])))

        let record = try #require(try await store.get(todo, .string("t1")))
        #expect(record.record["title"] == "remote")
        #expect(record.version == v)
        #expect(try await store.sideTable(todo, "tags") == ["t1=x", "t1=y"])
        let logged = try #require(try await store.changes(after: 0).last)
        #expect(logged.origin == "node-b")
        #expect(logged.version == v)
        #expect(logged.record?.record["title"] == "remote")
        let told = try #require(seen.withLock { $0.last })
        #expect(told.origin == "node-b")
        #expect(told.previous?.record["title"] == "local", "listeners get the record it replaced")

        // The clock moved past the remote version: the next local write wins over it.
        let local = try await store.put(todo, .string("t1"), ["title": "after"])
        #expect(local.version > v)
    }

    @Test func anOlderOrRepeatedRemoteWriteChangesNothing() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")
        let older = version(-5000)
        let local = try await store.put(todo, .string("t1"), ["title": "local"])
        #expect(try await apply(store, remote(todo, "t1", version: older)) == false)
        #expect(try await store.get(todo, .string("t1"))?.record["title"] == "local")

        let newer = version(1000)
        #expect(try await apply(store, remote(todo, "t2", version: newer)))
        #expect(try await apply(store, remote(todo, "t2", version: newer)) == false, "the same write twice")
        #expect(try await store.changes(after: 0).count == 2, "nothing logged for a write that changed nothing")
        #expect(local.version < newer)
    }

    @Test func equalVersionsAreOrderedByNodeName() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")
        let v = version(500)
        #expect(try await apply(store, remote(todo, "t1", version: v, origin: "node-b")))
        #expect(try await apply(store, remote(todo, "t1", version: v, origin: "node-a")) == false)
        #expect(try await apply(store, remote(todo, "t1", version: v, origin: "node-c")))
        #expect(try await store.get(todo, .string("t1"))?.record["title"] == "from node-c")
        typealias Stamp = RecordStamps.Stamp
        #expect(Stamp(version: 2, origin: "a") > Stamp(version: 1, origin: "z"))
        #expect(Stamp(version: 1, origin: "z") > Stamp(version: 1, origin: "a"))
    }

    /// A store in a new folder, with `change` made to its configuration.
    func open(_ change: (inout StoreConfiguration) -> Void = { _ in }, schema: String = todoSchemaText) throws -> Store {
        var configuration = StoreConfiguration(directory: try makeTemporaryDirectory(), durability: .normal)
        change(&configuration)
        return try Store.open(schema: try parseSchema(schema), configuration: configuration)
    }

    @Test func aDeleteLeavesATombstoneThatOlderWritesCannotCross() async throws {
        let store = try open { $0.replicating = true }
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")
        // A remote delete of a record this node holds.
        try await store.put(todo, .string("t1"), ["title": "local", "tags": ["x"]])
        #expect(try await apply(store, remote(todo, "t1", .delete, version: version(1000))))
        #expect(try await store.get(todo, .string("t1")) == nil)
        #expect(try await store.sideTable(todo, "tags") == [])
        #expect(try await apply(store, remote(todo, "t1", version: version(500))) == false, "a put made before the delete")
        #expect(try await store.get(todo, .string("t1")) == nil)
        #expect(try await apply(store, remote(todo, "t1", version: version(1500))), "a put made after it")
        #expect(try await store.get(todo, .string("t1"))?.record["title"] == "from node-b")

        // A local delete leaves one too.
        try await store.put(todo, .string("t2"), ["title": "local"])
        let before = version(-1)
        try await store.write { txn in _ = try txn.delete(todo, id: .string("t2")) }
        #expect(try await apply(store, remote(todo, "t2", version: before)) == false)
        #expect(try await store.get(todo, .string("t2")) == nil)
        // A delete of a record this node never had is remembered as well.
        #expect(try await apply(store, remote(todo, "t3", .delete, version: version(100))))
        #expect(try await apply(store, remote(todo, "t3", version: version(50))) == false)
        #expect(try await store.tombstoneCount() == 3)
    }

    @Test func concurrentPatchesOfDifferentAttributesBothSurvive() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")
        let put = try await store.put(todo, .string("t1"), ["title": "first", "notes": "none"])
        let base = RecordStamps.Stamp(version: put.version, origin: store.nodeID)
        // Here: a PATCH of the title.
        let local = try #require(try await store.write { txn in try txn.patch(todo, id: .string("t1"), patch: ["title": "mine"]) })
        // Meanwhile on node-b, which had the put: a PATCH of the notes, older than ours.
        let theirs = RecordStamps.Stamp(version: put.version + 1, origin: "node-b")
        var body = put.record
        body["notes"] = "theirs"
        let stamps = RecordStamps(base: base, attributes: ["notes": theirs])
        let write = RemoteWrite(
            table: todo, id: .string("t1"), operation: .patch, version: theirs.version, origin: "node-b", record: body, stamps: stamps)
        #expect(try await apply(store, write))
        let merged = try #require(try await store.get(todo, .string("t1")))
        #expect(merged.record["title"] == "mine")
        #expect(merged.record["notes"] == "theirs")
        #expect(merged.version > local.version, "the record changed: a new version, though no stamp is later than ours")
        #expect(try await apply(store, write) == false, "the same PATCH twice")
        let logged = try #require(try await store.changes(after: 0).last)
        #expect(logged.stamps?.stamp(of: "notes") == theirs)
        #expect(logged.stamps?.stamp(of: "title") == .init(version: local.version, origin: store.nodeID))

        // A put from elsewhere, later than both PATCHes, replaces every attribute.
        let later = RemoteWrite(
            table: todo, id: .string("t1"), operation: .put, version: version(60_000), origin: "node-c", record: ["title": "replaced"])
        #expect(try await apply(store, later))
        let replaced = try #require(try await store.get(todo, .string("t1")))
        #expect(replaced.record["title"] == "replaced" && replaced.record["notes"] == nil)
        #expect(replaced.version == version(60_000))
    }

    /// A put; C patches the title; D deletes; B, which had only the put, patches the notes later
    /// than the delete: what each order of arrival ends with (record and stamps).
    func outcomesOfEveryOrder(schema: String) async throws -> Set<String> {
        func stamp(_ offset: Int64, _ node: String) -> RecordStamps.Stamp { .init(version: version(offset), origin: node) }
        func writes(_ table: TableLayout) -> [RemoteWrite] {
            [
                RemoteWrite(
                    table: table, id: .string("r"), operation: .put, version: version(1), origin: "node-a",
                    record: ["id": "r", "title": "first", "notes": "n0"]),
                RemoteWrite(
                    table: table, id: .string("r"), operation: .patch, version: version(2), origin: "node-c",
                    record: ["id": "r", "title": "from c", "notes": "n0"],
                    stamps: RecordStamps(base: stamp(1, "node-a"), attributes: ["title": stamp(2, "node-c")])),
                RemoteWrite(table: table, id: .string("r"), operation: .delete, version: version(5), origin: "node-d", record: nil),
                RemoteWrite(
                    table: table, id: .string("r"), operation: .patch, version: version(9), origin: "node-b",
                    record: ["id": "r", "title": "first", "notes": "from b"],
                    stamps: RecordStamps(base: stamp(1, "node-a"), attributes: ["notes": stamp(9, "node-b")])),
            ]
        }
        func permutations(_ items: [Int]) -> [[Int]] {
            guard items.count > 1 else { return [items] }
            return items.indices.flatMap { i in
                var rest = items
                let first = rest.remove(at: i)
                return permutations(rest).map { [first] + $0 }
            }
        }
        var outcomes = Set<String>()
        for order in permutations([0, 1, 2, 3]) {
            let store = try openTemporaryStore(schema: schema)
            defer { store.closeAndRemoveFiles() }
            let table = try store.layout("Doc")
            let all = writes(table)
            for i in order {
                let write = all[i]
                _ = try await store.write { txn in try txn.apply(write) }
            }
            let row = try await store.read(database: "data") { db in
                try String.fetchOne(db, sql: "SELECT data || ' ' || COALESCE(stamps, version || '/' || origin) FROM r_Doc WHERE id = 'r'")
            }
            let record = try await store.get(table, .string("r"))
            outcomes.insert("\(record.map { "\($0.record["title"] ?? .null) \($0.record["notes"] ?? .null)" } ?? "deleted") \(row ?? "")")
        }
        return outcomes
    }

    @Test func theSameWritesInAnyOrderEndTheSame() async throws {
        let open = try await outcomesOfEveryOrder(schema: "type Doc @table { id: ID @primaryKey\n title: String\n notes: String }")
        #expect(open.count == 1, "\(open)")
        #expect(open.first?.hasPrefix("null \"from b\"") == true, "the delete took what was written before it; B's later notes stay: \(open)")
        let required = try await outcomesOfEveryOrder(schema: "type Doc @table { id: ID @primaryKey\n title: String!\n notes: String }")
        #expect(required == ["deleted "], "without its required title, what is left counts as deleted, in every order: \(required)")
    }

    @Test func aLocalPatchStampsOnlyWhatItChanged() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")
        let put = try await store.put(todo, .string("t1"), ["title": "a", "notes": "n"])
        // In a later millisecond, so that `@updatedTime` changes (within the same one it does not,
        // and keeps its stamp).
        try await Task.sleep(for: .milliseconds(3))
        let patched = try #require(try await store.write { txn in try txn.patch(todo, id: .string("t1"), patch: ["notes": nil]) })
        let logged = try #require(try await store.changes(after: 0).last?.stamps)
        let base = RecordStamps.Stamp(version: put.version, origin: store.nodeID)
        let now = RecordStamps.Stamp(version: patched.version, origin: store.nodeID)
        #expect(logged.base == base)
        #expect(logged.stamp(of: "title") == base)
        #expect(logged.stamp(of: "notes") == now, "a removed attribute keeps its stamp")
        #expect(logged.stamp(of: "updatedAt") == now)
        #expect(try await store.changes(after: 0).first?.stamps == nil, "a put stamps the whole record with its version")
    }

    @Test func storesMadeBeforeStampsGainTheColumns() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        var store = try openStore(directory)
        try await store.put(try store.layout("Todo"), .string("t1"), ["title": "old"])
        store.close()
        let queue = try DatabaseQueue(path: directory + "/data.sqlite")
        try await queue.write { db in
            try db.execute(sql: "ALTER TABLE r_Todo DROP COLUMN stamps")
            try db.execute(sql: "ALTER TABLE _microlith_changelog DROP COLUMN stamps")
        }
        try queue.close()
        store = try openStore(directory)
        defer { store.close() }
        let todo = try store.layout("Todo")
        let patched = try await store.write { txn in try txn.patch(todo, id: .string("t1"), patch: ["notes": "new"]) }
        #expect(patched?.record["title"] == "old")
        #expect(try await store.changes(after: 0).last?.stamps != nil)
    }

    @Test func aNodeOnItsOwnKeepsNoTombstonesOfItsDeletes() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")
        try await store.put(todo, .string("t1"), ["title": "x"])
        try await store.write { txn in _ = try txn.delete(todo, id: .string("t1")) }
        #expect(try await store.tombstoneCount() == 0)
    }

    @Test func theClockStartsPastEveryVersionTheFilesHold() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        var store = try openStore(directory)
        let ahead = version(20_000)
        #expect(try await apply(store, remote(try store.layout("Todo"), "t1", version: ahead)))
        store.close()
        store = try openStore(directory)
        defer { store.close() }
        let local = try await store.put(try store.layout("Todo"), .string("t2"), ["title": "after a restart"])
        #expect(local.version > ahead)
    }

    @Test func anExpiredRecordIsDeletedWithItsOwnStamp() async throws {
        let store = try openTemporaryStore(schema: "type Session @table(expiration: 5) { id: ID @primaryKey\n user: String }")
        defer { store.closeAndRemoveFiles() }
        let session = try store.layout("Session")
        let old = version(-10_000)
        #expect(
            try await apply(
                store, RemoteWrite(table: session, id: .string("s1"), operation: .put, version: old, origin: "node-b", record: ["user": "u"])))
        #expect(try await store.sweepExpired() == 1)
        let delete = try #require(try await store.changes(after: 0).last)
        #expect(delete.operation == .delete)
        #expect(delete.version == old && delete.origin == "node-b", "a later write made elsewhere wins over it")
    }

    @Test func theTrimGoesByLocalCommitNotByVersion() async throws {
        let store = try open { $0.changeLogRetentionSeconds = 3600 }
        defer { store.closeAndRemoveFiles() }
        // A change made two days ago on another node, applied here now.
        #expect(try await apply(store, remote(try store.layout("Todo"), "t1", version: version(-2 * 86_400_000))))
        #expect(try await store.trimChangeLog() == 0)
        #expect(try await store.changes(after: 0).count == 1)
    }

    @Test func aKeyOfTheWrongKindIsRefused() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let error = await storeError {
            _ = try await apply(
                store, RemoteWrite(table: try store.layout("Todo"), id: .int(5), operation: .delete, version: version(), origin: "b", record: nil))
        }
        #expect(error?.code == .invalidID)
    }

    @Test func aNodeOnItsOwnWritesAdditionsAsPlainValues() async throws {
        let store = try openTemporaryStore(schema: "type Stock @table { id: ID @primaryKey\n quantity: Int }")
        defer { store.closeAndRemoveFiles() }
        let stock = try store.layout("Stock")
        try await store.put(stock, .string("p1"), ["quantity": 10])
        let after = try await store.write { txn in try txn.add(stock, id: .string("p1"), attribute: "quantity", amount: -3) }
        #expect(after?.record["quantity"] == 7)
        #expect(try await store.changes(after: 0).last?.stamps == nil, "no counter: nobody else adds")
        let overflow = await storeError {
            _ = try await store.write { txn in try txn.add(stock, id: .string("p1"), attribute: "quantity", amount: .max) }
        }
        #expect(overflow?.code == .invalidRecord)
    }

    @Test func additionsAreKeptAsCountersAndASetStartsAgain() async throws {
        let store = try open({ $0.replicating = true }, schema: "type Stock @table { id: ID @primaryKey\n quantity: Int\n name: String }")
        defer { store.closeAndRemoveFiles() }
        let stock = try store.layout("Stock")
        try await store.put(stock, .string("p1"), ["quantity": 10, "name": "pen"])
        var after = try await store.write { txn in try txn.add(stock, id: .string("p1"), attribute: "quantity", amount: -3) }
        after = try await store.write { txn in try txn.add(stock, id: .string("p1"), attribute: "quantity", amount: 1) }
        #expect(after?.record["quantity"] == 8)
        let counter = try #require(try await store.changes(after: 0).last?.stamps?.counters["quantity"])
        #expect(counter.base == 10 && counter.added[store.nodeID] == 1 && counter.removed[store.nodeID] == 3)
        #expect(try await store.write { txn in try txn.add(stock, id: .string("none"), attribute: "quantity", amount: 1) } == nil)
        // An attribute not set yet counts from 0.
        try await store.put(stock, .string("p2"), ["name": "ink"])
        #expect(try await store.write { txn in try txn.add(stock, id: .string("p2"), attribute: "quantity", amount: 4) }?.record["quantity"] == 4)
        // A PATCH of the value starts the counter again.
        _ = try await store.write { txn in try txn.patch(stock, id: .string("p1"), patch: ["quantity": 100]) }
        #expect(try await store.changes(after: 0).last?.stamps?.counters["quantity"] == nil)
        #expect(try await store.write { txn in try txn.add(stock, id: .string("p1"), attribute: "quantity", amount: -1) }?.record["quantity"] == 99)
        // Only integers.
        let text = await storeError { _ = try await store.write { txn in try txn.add(stock, id: .string("p1"), attribute: "name", amount: 1) } }
        #expect(text?.code == .invalidRecord && text?.message.contains("Int and Long") == true)
        let missing = await storeError { _ = try await store.write { txn in try txn.add(stock, id: .string("p1"), attribute: "size", amount: 1) } }
        #expect(missing?.code == .invalidRecord)
    }

    @Test func oldTombstonesAreTrimmed() async throws {
        let directory = try makeTemporaryDirectory()
        defer { removeDirectory(directory) }
        var configuration = StoreConfiguration(directory: directory, durability: .normal)
        configuration.tombstoneRetentionSeconds = 60
        let store = try Store.open(schema: try parseSchema(todoSchemaText), configuration: configuration)
        defer { store.close() }
        let todo = try store.layout("Todo")
        #expect(try await apply(store, remote(todo, "old", .delete, version: version(-120_000))))
        #expect(try await apply(store, remote(todo, "new", .delete, version: version(-120_000))))
        try await store.trimChangeLog()
        #expect(try await store.tombstoneCount() == 2, "they go by when they were written here, not by their stamps")
        try await store.write { txn in
            try txn.db.execute(sql: "UPDATE _microlith_tombstones SET at = at - 120000 WHERE id = 'old'")
        }
        try await store.trimChangeLog()
        #expect(try await store.tombstoneCount() == 1)
    }

    @Test func anEntryWhosePredecessorNeverCameOpensAGap() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let found = try await store.write { txn in
            try txn.recordApplied(origin: "node-b", entries: [(1, 0), (3, 1), (7, 5)], version: 0).map { "\($0.after)-\($0.upto)" }
        }
        #expect(found == ["3-5"])
        let later = try await store.write { txn in
            try txn.recordApplied(origin: "node-b", entries: [(6, 3), (9, 7)], version: 0).count
        }
        #expect(later == 0, "an old entry again, then the next one in line")
        #expect(try await store.gaps().map { "\($0.origin) \($0.after) \($0.upto)" } == ["node-b 3 5"])
        #expect(try await store.appliedPositions() == ["node-b": 9])
    }

    @Test func appliedPositionsNeverGoBack() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        try await store.write { txn in
            try txn.recordApplied(origin: "node-b", sequence: 7)
            try txn.recordApplied(origin: "node-c", sequence: 2)
        }
        try await store.write { txn in try txn.recordApplied(origin: "node-b", sequence: 5) }
        #expect(try await store.appliedPositions() == ["node-b": 7, "node-c": 2])
    }

    @Test func aRemoteRecordThatDoesNotFitIsRefused() async throws {
        let store = try openTemporaryStore()
        defer { store.closeAndRemoveFiles() }
        let todo = try store.layout("Todo")
        let wrongType = await storeError {
            _ = try await apply(store, remote(todo, "t1", version: version(), ["title": .int(5)]))
        }
        #expect(wrongType?.code == .invalidRecord)
        #expect(wrongType?.message.contains("node-b") == true)
        let wrongKey = await storeError {
            _ = try await apply(store, remote(todo, "t1", version: version(), ["id": "t2", "title": "x"]))
        }
        #expect(wrongKey?.code == .invalidID)
        let noRecord = await storeError {
            _ = try await apply(store, RemoteWrite(table: todo, id: .string("t1"), operation: .put, version: 1, origin: "b", record: nil))
        }
        #expect(noRecord?.code == .invalidRecord)
        #expect(try await store.get(todo, .string("t1")) == nil)
    }

    @Test func theDigestFollowsWhatRecordsMayHoldNotTheIndexes() throws {
        func digest(_ text: String) throws -> String {
            let store = try openTemporaryStore(schema: text)
            defer { store.closeAndRemoveFiles() }
            return try store.layout("Todo").replicationDigest
        }
        let plain = try digest("type Todo @table { id: ID @primaryKey\n title: String }")
        #expect(plain.count == 16)
        #expect(try digest("type Todo @table { id: ID @primaryKey\n title: String @indexed }") == plain)
        #expect(try digest("type Todo @table { id: ID @primaryKey\n title: String! }") != plain)
        #expect(try digest("type Todo @table { id: ID @primaryKey\n title: Int }") != plain)
        #expect(try digest("type Todo @table { id: ID @primaryKey\n title: String\n done: Boolean }") != plain)
    }
}
