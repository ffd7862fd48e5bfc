import Foundation
import GRDB
import Logging
import MicrolithJSON
import MicrolithNATS
import MicrolithSchema
import MicrolithStore
import MicrolithTestSupport
import NIOCore
import Synchronization
import Testing

@testable import MicrolithReplication

/// Nodes applying each other's change logs through a real nats-server's JetStream.
@Suite(.serialized, .timeLimit(.minutes(1))) struct ChangeApplierTests {
    static let schema = todoSchema()

    /// The Todo table, its title of type `title`, with `extra` attribute lines.
    static func todoSchema(title: String = "String", extra: String = "") -> String {
        """
        type Todo @table @export {
            id: ID @primaryKey
            title: \(title)
            tags: [String] @indexed
            \(extra)
        }
        """
    }

    /// One node: its store, its publisher and its applier.
    struct Node {
        let store: Store
        let publisher: ChangeLogPublisher
        let applier: ChangeApplier
        var todo: TableLayout { store.table(name: "Todo")! }

        func put(_ id: String, _ body: JSONObject) async throws {
            let todo = self.todo
            try await store.write { txn in _ = try txn.put(todo, id: .string(id), body: body) }
        }

        func delete(_ id: String) async throws {
            let todo = self.todo
            try await store.write { txn in _ = try txn.delete(todo, id: .string(id)) }
        }

        /// Every record as `id=data@version/origin`, sorted: equal dumps mean equal data and
        /// equal versions.
        func dump() async throws -> [String] {
            try await store.read(database: "data") { db in
                try String.fetchAll(db, sql: "SELECT id || '=' || data || '@' || version || '/' || origin FROM r_Todo ORDER BY id")
            }
        }

        /// Every record as `id=data` with its attribute stamps (written out in full where the row
        /// keeps none: one write made it all), sorted: versions alone may differ between nodes.
        func stampedDump() async throws -> [String] {
            try await store.read(database: "data") { db in
                try String.fetchAll(
                    db,
                    sql: """
                        SELECT id || '=' || data || ' ' || COALESCE(stamps, '{"base":[' || version || ',"' || origin || '"],"attributes":{}}')
                        FROM r_Todo ORDER BY id
                        """)
            }
        }
    }

    struct Cluster {
        let server: NATSServerProcess
        let client: NATSClient
        let jetStream: NATSJetStream
        let nodes: [Node]
        let directories: [String]

        func close() async {
            for node in nodes { node.store.close() }
            await client.close()
            for d in directories { try? FileManager.default.removeItem(atPath: d) }
        }

        /// Publishes every node's log and applies what the stream holds on every node until
        /// a round finds nothing more to do; returns the reports of the applying rounds.
        @discardableResult
        func sync() async throws -> [ChangeApplier.Report] {
            var reports: [ChangeApplier.Report] = []
            for _ in 0..<20 {
                for node in nodes { try await node.publisher.publishPending() }
                var received = 0
                for node in nodes {
                    let report = try await node.applier.applyNext()
                    received += report.received
                    reports.append(report)
                }
                if received == 0 { return reports }
            }
            Issue.record("the nodes did not settle in 20 rounds")
            return reports
        }
    }

    func node(
        _ name: String, directory: String, jetStream: NATSJetStream, schema: String = Self.schema, clockOffset: Int64 = 0,
        applier: ChangeApplier.Configuration = ChangeApplier.Configuration()
    ) throws -> Node {
        var configuration = StoreConfiguration(
            directory: directory, durability: .normal, nodeID: name,
            wallClock: { HybridLogicalClock.systemMilliseconds() + clockOffset })
        configuration.keepUnpublishedChanges = true
        configuration.replicating = true
        let store = try Store.open(schema: try SchemaParser.parse(schema, file: "schema.graphql"), configuration: configuration)
        var applierConfiguration = applier
        applierConfiguration.expires = .milliseconds(200)
        // The position is recorded at once, so a status read right after shows it.
        var publishing = ChangeLogPublisher.Configuration()
        publishing.recordInterval = .zero
        return Node(
            store: store,
            publisher: ChangeLogPublisher(store: store, jetStream: jetStream, configuration: publishing, logger: Logger(label: "publisher-\(name)")),
            applier: ChangeApplier(store: store, jetStream: jetStream, configuration: applierConfiguration, logger: Logger(label: "applier-\(name)")))
    }

    func cluster(
        _ names: [String] = ["node-a", "node-b", "node-c"], make: ((String, String, NATSJetStream) throws -> Node)? = nil
    ) async throws -> Cluster {
        let server = try NATSServerProcess(["-js"])
        let client = try await NATSClient.connect(NATSClient.Configuration(servers: [try NATSServerAddress(parsing: server.url)]))
        let jetStream = NATSJetStream(client: client, timeout: .seconds(2))
        var nodes: [Node] = []
        var directories: [String] = []
        for name in names {
            let directory = NSTemporaryDirectory() + "microlith-applier-\(UUID().uuidString)"
            directories.append(directory)
            let node = try make?(name, directory, jetStream) ?? self.node(name, directory: directory, jetStream: jetStream)
            try await node.publisher.prepare()
            try await node.applier.prepare()
            nodes.append(node)
        }
        return Cluster(server: server, client: client, jetStream: jetStream, nodes: nodes, directories: directories)
    }

    @Test func writesOnEveryNodeReachEveryNode() async throws {
        let c = try await cluster()
        let (a, b, z) = (c.nodes[0], c.nodes[1], c.nodes[2])
        try await a.put("1", ["title": "from a", "tags": ["x"]])
        try await b.put("2", ["title": "from b"])
        try await z.put("3", ["title": "from c"])
        try await a.put("4", ["title": "doomed"])
        try await c.sync()
        try await b.delete("4")
        try await z.store.write { txn in _ = try txn.patch(z.todo, id: .string("1"), patch: ["title": "patched on c"]) }
        try await c.sync()

        let dumps = try await [a.dump(), b.dump(), z.dump()]
        #expect(dumps[0].count == 3)
        #expect(dumps[0] == dumps[1] && dumps[1] == dumps[2])
        #expect(try await b.store.get(b.todo, .string("1"))?.record["title"] == "patched on c")
        #expect(try await a.store.get(a.todo, .string("4")) == nil)
        #expect(try await z.store.appliedPositions()["node-a"] != nil)
        await c.close()
    }

    @Test func concurrentWritesToOneRecordEndTheSameEverywhere() async throws {
        let c = try await cluster()
        for round in 0..<5 {
            // Every node writes the same record before any of them hears from the others.
            for (i, node) in c.nodes.enumerated() {
                if round % 2 == 1 && i == 1 {
                    try await node.delete("shared")
                } else {
                    try await node.put("shared", ["title": .string("round \(round) on \(node.store.nodeID)")])
                }
            }
            try await c.sync()
            // Data and stamps; versions may differ where two nodes' clocks gave one version number
            // (the node name breaks the tie, and a node that held the other gives the record a
            // version of its own, so one version never names two contents).
            let dumps = try await c.nodes.asyncMap { try await $0.stampedDump() }
            #expect(Set(dumps).count == 1, "round \(round): \(dumps)")
        }
        await c.close()
    }

    @Test func concurrentPatchesOfDifferentAttributesBothSurviveEverywhere() async throws {
        let c = try await cluster()
        let (a, b, z) = (c.nodes[0], c.nodes[1], c.nodes[2])
        try await a.put("1", ["title": "first", "tags": ["x"]])
        try await c.sync()
        // Each node changes another attribute before hearing of the others.
        _ = try await a.store.write { txn in try txn.patch(a.todo, id: .string("1"), patch: ["title": "title from a"]) }
        _ = try await b.store.write { txn in try txn.patch(b.todo, id: .string("1"), patch: ["tags": ["from-b"]]) }
        _ = try await z.store.write { txn in try txn.patch(z.todo, id: .string("1"), patch: ["title": "title from c"]) }
        try await c.sync()
        let dumps = try await c.nodes.asyncMap { try await $0.stampedDump() }
        #expect(Set(dumps).count == 1, "\(dumps)")
        for node in c.nodes {
            let record = try #require(try await node.store.get(node.todo, .string("1")))
            #expect(record.record["tags"] == ["from-b"], "b's PATCH of the tags survives beside the titles")
            #expect(record.record["title"] == "title from c", "of two PATCHes of the title, the later one wins")
        }
        for node in c.nodes {
            let index = try await node.store.read(database: "data") { db in try String.fetchAll(db, sql: "SELECT value FROM a_Todo_tags") }
            #expect(index == ["from-b"], "the tag index follows the merged record")
        }
        await c.close()
    }

    @Test func additionsOnEveryNodeAllCount() async throws {
        let schema = Self.todoSchema(extra: "count: Int")
        let c = try await cluster { name, directory, jetStream in try self.node(name, directory: directory, jetStream: jetStream, schema: schema) }
        try await c.nodes[0].put("stock", ["count": 100])
        try await c.sync()
        for round in 0..<3 {
            // Every node takes some away before it hears of the others.
            for (i, node) in c.nodes.enumerated() {
                let todo = node.todo
                _ = try await node.store.write { txn in try txn.add(todo, id: .string("stock"), attribute: "count", amount: Int64(-(i + 1))) }
            }
            try await c.sync()
            for node in c.nodes {
                #expect(try await node.store.get(node.todo, .string("stock"))?.record["count"] == .int(Int64(100 - 6 * (round + 1))))
            }
        }
        let dumps = try await c.nodes.asyncMap { try await $0.stampedDump() }
        #expect(Set(dumps).count == 1, "\(dumps)")
        await c.close()
    }

    @Test func theStatusShowsTheOutboxAndWhatEachPeerApplied() async throws {
        let c = try await cluster(["node-a", "node-b"])
        let (a, b) = (c.nodes[0], c.nodes[1])
        try await a.put("1", ["title": "one"])
        try await a.put("2", ["title": "two"])
        var status = try await ReplicationStatus.read(a.store)
        #expect(status.node == "node-a")
        #expect(status.databases.map(\.outbox) == [2], "two writes not yet published")
        try await c.sync()
        status = try await ReplicationStatus.read(a.store)
        #expect(status.databases[0].outbox == 0 && status.databases[0].publishedSequence == 2)
        let onB = try await ReplicationStatus.read(b.store)
        let peer = try #require(onB.databases.first?.peers.first)
        #expect(peer.node == "node-a" && peer.appliedSequence == 2)
        #expect(peer.lagMilliseconds >= 0 && peer.lagMilliseconds < 60_000)
        #expect(onB.parked == 0)
        #expect(onB.text.contains("peer node-a: applied up to sequence 2"))
        guard case .object(let json) = onB.json, case .array(let databases)? = json["databases"] else {
            Issue.record("the status JSON has no databases")
            return
        }
        #expect(databases.count == 1)
        await c.close()
    }

    @Test func aMessageTheStreamLostIsNoticedAndRecoveredFromItsOrigin() async throws {
        let c = try await cluster(["node-a", "node-b"])
        let (a, b) = (c.nodes[0], c.nodes[1])
        // Published one by one: one message each (entries waiting together would share one).
        for i in 1...3 {
            try await a.put("\(i)", ["title": .string("t\(i)")])
            try await a.publisher.publishPending()
        }
        let published = try await c.jetStream.fetch(
            stream: "MICROLITH_CHANGES", consumer: b.applier.consumerName, batch: 10, expires: .milliseconds(300))
        #expect(try published.map { try ReplicatedChange(json: $0.payload).previous } == [0, 1, 2], "each names the one before")
        // As if the stream had lost the second (nats-server 2.9 can, on a crash): b never sees it.
        try await c.jetStream.deleteMessage(stream: "MICROLITH_CHANGES", sequence: 2)
        let report = try await b.applier.apply(published.filter { $0.streamSequence != 2 })
        #expect(report.applied == 2)
        #expect(try await b.store.gaps().map { "\($0.origin) \($0.after) \($0.upto)" } == ["node-a 1 2"])
        #expect(try await ReplicationStatus.read(b.store).text.contains("entries 2...2 of node node-a's log never arrived"))

        // node-a answers from its change log.
        let responder = RepairResponder(store: a.store, client: c.client, logger: Logger(label: "repair-a"))
        let answering = Task { await responder.run() }
        var recovered = 0
        let started = ContinuousClock.now
        while recovered == 0 && ContinuousClock.now - started < .seconds(5) {
            recovered = try await b.applier.fillGaps()
            if recovered == 0 { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(recovered == 1)
        #expect(try await b.store.get(b.todo, .string("2"))?.record["title"] == "t2")
        #expect(try await b.store.gaps() == [])
        answering.cancel()
        await answering.value
        await c.close()
    }

    @Test func aGapTheOriginsLogNoLongerHoldsIsKeptWithWhy() async throws {
        let c = try await cluster(["node-a", "node-b"])
        let (a, b) = (c.nodes[0], c.nodes[1])
        for i in 1...2 {
            try await a.put("\(i)", ["title": .string("t\(i)")])
            try await a.publisher.publishPending()
        }
        try await c.jetStream.deleteMessage(stream: "MICROLITH_CHANGES", sequence: 1)
        // node-a's log no longer holds its first entry (trimmed).
        try await a.store.write { txn in try txn.db.execute(sql: "DELETE FROM _microlith_changelog WHERE seq = 1") }
        #expect(try await b.applier.applyNext().applied == 1)
        let responder = RepairResponder(store: a.store, client: c.client, logger: Logger(label: "repair-a"))
        let answering = Task { await responder.run() }
        var gaps: [ReplicationGap] = []
        let started = ContinuousClock.now
        while gaps.first?.problem == nil && ContinuousClock.now - started < .seconds(5) {
            try await b.applier.fillGaps()
            gaps = try await b.store.gaps()
            if gaps.first?.problem == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(gaps.count == 1)
        #expect(gaps.first?.problem?.contains("trimmed") == true, "\(gaps)")
        answering.cancel()
        await answering.value
        await c.close()
    }

    @Test func aSecondDeliveryChangesNothing() async throws {
        let c = try await cluster(["node-a", "node-b"])
        try await c.nodes[0].put("1", ["title": "once"])
        try await c.nodes[0].publisher.publishPending()
        let b = c.nodes[1]
        let first = try await c.jetStream.fetch(stream: "MICROLITH_CHANGES", consumer: b.applier.consumerName, batch: 10, expires: .milliseconds(300))
        #expect(try await b.applier.apply(first).applied == 1)
        // The same messages again, as after a lost acknowledgement.
        let again = try await b.applier.apply(first)
        #expect(again.applied == 0 && again.superseded == 1)
        #expect(try await b.store.changes(after: 0).count == 1)
        await c.close()
    }

    @Test func otherNodesWritesCostThePublisherNoCommit() async throws {
        let c = try await cluster(["node-a", "node-b"])
        try await c.nodes[0].put("1", ["title": "from a"])
        try await c.sync()
        let b = c.nodes[1]
        #expect(try await b.publisher.publishPending() == 0)
        #expect(try await b.publisher.published() == 1, "read past")
        let recorded = try await b.store.read(database: "data") { db in
            try String.fetchOne(db, sql: "SELECT value FROM _microlith_meta WHERE key = ?", arguments: [Store.publishedChangeKey])
        }
        #expect(recorded == nil, "not written: that would be one more commit per batch applied")
        await c.close()
    }

    @Test func ownEntriesChangeNothingAndAreAcknowledged() async throws {
        let c = try await cluster(["node-a", "node-b"])
        try await c.nodes[0].put("1", ["title": "mine"])
        try await c.nodes[0].publisher.publishPending()
        let report = try await c.nodes[0].applier.applyNext()
        #expect(report.own == 1 && report.applied == 0 && report.superseded == 0, "passed over unread")
        #expect(try await c.nodes[0].applier.applyNext().received == 0, "acknowledged: not delivered again")
        #expect(try await c.nodes[0].store.changes(after: 0).count == 1, "nothing logged twice")
        await c.close()
    }

    @Test func anOwnEntryItsLogHoldsFromAnotherTransactionIsApplied() async throws {
        // As after a restore from a backup: the stream holds an entry of this node under a
        // sequence its log now gives to another write.
        let c = try await cluster(["node-a", "node-b"])
        let a = c.nodes[0]
        try await a.put("1", ["title": "mine"])
        try await a.publisher.publishPending()
        let lost = ReplicatedChange(
            node: "node-a", database: "data", sequence: 1, transaction: 999_999, table: "Todo", id: .string("from-before"), operation: .put,
            version: HybridLogicalClock.systemMilliseconds() << 16, record: ["id": "from-before", "title": "written before the restore"],
            schema: a.todo.replicationDigest)
        _ = try await c.jetStream.publish("microlith.changes.node-a.data.Todo", payload: lost.json, messageID: lost.messageID)
        var (received, applied) = (0, 0)
        for _ in 0..<5 where received < 2 {
            let report = try await a.applier.applyNext()
            received += report.received
            applied += report.applied
        }
        #expect(received == 2 && applied == 1, "the entry its log holds is passed over, the other applied")
        #expect(try await a.store.get(a.todo, .string("from-before"))?.record["title"] == "written before the restore")
        await c.close()
    }

    @Test func aNodeMadeAnewUnderItsNameGetsItsWritesBackFromTheStream() async throws {
        let c = try await cluster(["node-a", "node-b"])
        try await c.nodes[0].put("1", ["title": "written on a"])
        try await c.sync()
        // node-a's disk is lost: a new data folder, the same name, its consumer deleted.
        try await c.jetStream.deleteConsumer(stream: "MICROLITH_CHANGES", name: c.nodes[0].applier.consumerName)
        let directory = NSTemporaryDirectory() + "microlith-applier-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let fresh = try node("node-a", directory: directory, jetStream: c.jetStream)
        defer { fresh.store.close() }
        try await fresh.applier.prepare()
        let report = try await fresh.applier.applyNext()
        #expect(report.own == 1 && report.applied == 1)
        #expect(try await fresh.store.get(fresh.todo, .string("1"))?.record["title"] == "written on a")
        // Its next write is numbered from 1 again, yet is not taken for a retry of the old one.
        try await fresh.put("2", ["title": "after"])
        // (The write it got back is published once more as well: the others hold it, a no-op.)
        #expect(try await fresh.publisher.publishPending() == 2)
        #expect(try await c.nodes[1].applier.applyNext().applied >= 1)
        #expect(try await c.nodes[1].store.get(c.nodes[1].todo, .string("2")) != nil)
        await c.close()
    }

    @Test func aRecordThatDoesNotFitIsParkedNotDroppedAndHoldsUpNothing() async throws {
        let other = Self.todoSchema(title: "Int")
        let c = try await cluster(["node-a", "node-b"]) { name, directory, jetStream in
            try self.node(name, directory: directory, jetStream: jetStream, schema: name == "node-b" ? other : Self.schema)
        }
        try await c.nodes[0].put("1", ["title": "text"])
        try await c.nodes[0].put("2", ["tags": ["fits"]])
        try await c.nodes[0].publisher.publishPending()
        let b = c.nodes[1]
        let report = try await b.applier.applyNext()
        #expect(report.refused == 1 && report.applied == 1, "the record that fits is applied beside the one that does not")
        #expect(try await b.applier.parkedCount() == 1)
        #expect(try await b.applier.applyNext().received == 0, "acknowledged: it holds up nothing")
        #expect(try await b.applier.retryParked() == 0, "still does not fit")
        #expect(try await b.applier.parkedCount() == 1)
        await c.close()
    }

    @Test func aTableDeclaredDifferentlyTakesRecordsThatFit() async throws {
        let wider = Self.todoSchema(extra: "notes: String")
        let c = try await cluster(["node-a", "node-b"]) { name, directory, jetStream in
            try self.node(name, directory: directory, jetStream: jetStream, schema: name == "node-b" ? wider : Self.schema)
        }
        #expect(c.nodes[0].todo.replicationDigest != c.nodes[1].todo.replicationDigest)
        try await c.nodes[0].put("1", ["title": "plain"])
        try await c.nodes[0].publisher.publishPending()
        let report = try await c.nodes[1].applier.applyNext()
        #expect(report.applied == 1 && report.refused == 0)
        await c.close()
    }

    @Test func aVersionFarAheadOfTheClockIsParkedUntilTheClockCatchesUp() async throws {
        var applier = ChangeApplier.Configuration()
        applier.maximumClockAhead = .seconds(1)
        let c = try await cluster(["node-a", "node-b", "node-c"]) { name, directory, jetStream in
            // node-a's clock runs 2 s fast: its writes wait on node-b until node-b's clock catches up.
            let offset: Int64 = name == "node-a" ? 2_000 : 0
            return try self.node(name, directory: directory, jetStream: jetStream, clockOffset: offset, applier: applier)
        }
        try await c.nodes[0].put("fast", ["title": "from the future"])
        try await c.nodes[2].put("now", ["title": "on time"])
        for node in c.nodes { try await node.publisher.publishPending() }
        let b = c.nodes[1]
        let report = try await b.applier.applyNext()
        #expect(report.refused == 1 && report.applied == 1)
        #expect(try await b.store.get(b.todo, .string("fast")) == nil)
        try await Task.sleep(for: .milliseconds(1500))
        #expect(try await b.applier.retryParked() == 1)
        #expect(try await b.store.get(b.todo, .string("fast"))?.record["title"] == "from the future")
        #expect(try await b.applier.parkedCount() == 0)
        // The node that took the write now versions its own writes after it.
        let local = try await b.store.write { txn in try txn.put(b.todo, id: .string("fast"), body: ["title": "later"]) }
        #expect(try await c.nodes[0].store.get(c.nodes[0].todo, .string("fast"))!.version < local.version)
        await c.close()
    }

    @Test func aMessageThatIsNotAChangeIsParkedNotRetriedFromTheStream() async throws {
        let c = try await cluster(["node-a", "node-b"])
        _ = try await c.jetStream.publish("microlith.changes.node-x.data.Todo", payload: ByteBuffer(string: "not json"))
        let report = try await c.nodes[1].applier.applyNext()
        #expect(report.malformed == 1)
        #expect(try await c.nodes[1].applier.applyNext().received == 0)
        #expect(try await c.nodes[1].applier.parkedCount() == 1)
        await c.close()
    }

    @Test func runningNodesWritingAtOnceFindNoGaps() async throws {
        let c = try await cluster(["node-a", "node-b"])
        let tasks = c.nodes.flatMap { node in [Task { await node.publisher.run() }, Task { await node.applier.run() }] }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for node in c.nodes {
                group.addTask { for i in 0..<40 { try await node.put("\(node.store.nodeID)-\(i)", ["title": .string("\(i)")]) } }
            }
            try await group.waitForAll()
        }
        let started = ContinuousClock.now
        var dumps = try await c.nodes.asyncMap { try await $0.stampedDump() }
        while Set(dumps).count != 1 || dumps[0].count != 80, ContinuousClock.now - started < .seconds(10) {
            try await Task.sleep(for: .milliseconds(50))
            dumps = try await c.nodes.asyncMap { try await $0.stampedDump() }
        }
        #expect(Set(dumps).count == 1 && dumps[0].count == 80)
        for node in c.nodes { #expect(try await node.store.gaps() == [], "\(node.store.nodeID)") }
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
        await c.close()
    }

    @Test func runningNodesFollowEachOtherAndListenersSeeRemoteWrites() async throws {
        let c = try await cluster(["node-a", "node-b"])
        let (a, b) = (c.nodes[0], c.nodes[1])
        let seen = Mutex<[String]>([])
        b.store.onCommit { changes in seen.withLock { $0 += changes.map { "\($0.origin):\($0.id)" } } }
        let tasks = c.nodes.flatMap { node in [Task { await node.publisher.run() }, Task { await node.applier.run() }] }
        try await a.put("live", ["title": "hello"])
        let started = ContinuousClock.now
        // Listeners are told just after the commit is visible to reads: wait for both.
        while seen.withLock({ $0.isEmpty }) && ContinuousClock.now - started < .seconds(5) {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(try await b.store.get(b.todo, .string("live"))?.record["title"] == "hello")
        #expect(seen.withLock { $0 } == ["node-a:live"])
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
        await c.close()
    }
    @Test func aNodeResyncsFromAnotherNodesTablesRowByRowReplacingNothing() async throws {
        let c = try await cluster(["node-a", "node-b"])
        let (a, b) = (c.nodes[0], c.nodes[1])
        try await a.put("gone", ["title": "to be deleted"])
        try await c.sync()
        // What node-b never gets through the stream: 300 records (more than a page), a delete…
        try await a.delete("gone")
        for i in 1...300 { try await a.put("r\(i)", ["title": .string("a \(i)")]) }
        // …while it writes on its own: a record only it holds, and a later write of one of them.
        try await b.put("mine", ["title": "only on b"])
        try await b.put("r1", ["title": "b, later"])
        let responders = [a, b].map { ResyncResponder(store: $0.store, client: c.client, logger: Logger(label: "resync")) }
        let running = responders.map { responder in Task { await responder.run() } }
        defer { for task in running { task.cancel() } }
        try await Task.sleep(for: .milliseconds(200))  // the subscriptions reach the server

        let resync = PeerResync(store: b.store, client: c.client, stream: ReplicationStream(), logger: Logger(label: "resync"))
        let report = try await resync.run(database: "data")
        #expect(report.peer == "node-a", "a node does not answer its own request")
        #expect(report.received == 301 && report.changed == 300 && report.refused == 0, "\(report)")
        #expect(try await b.store.get(b.todo, .string("r300"))?.record["title"] == "a 300")
        #expect(try await b.store.get(b.todo, .string("r1"))?.record["title"] == "b, later", "the later write stays")
        #expect(try await b.store.get(b.todo, .string("mine")) != nil, "a row only the receiver holds stays")
        #expect(try await b.store.get(b.todo, .string("gone")) == nil, "the tombstone came too")
        #expect(try await a.store.get(a.todo, .string("mine")) == nil, "a resync changes only the node that asks")
        let again = try await resync.run(database: "data")
        #expect(again.changed == 0, "nothing diverged: nothing changes")
        await c.close()
    }

    @Test func aNodeWhoseMissedEntriesTheStreamDroppedOwesAResync() async throws {
        let c = try await cluster(["node-a", "node-b"])
        let (a, b) = (c.nodes[0], c.nodes[1])
        for i in 1...5 {
            try await a.put("r\(i)", ["title": .string("a \(i)")])
            try await a.publisher.publishPending()
        }
        try await b.applier.prepare()
        #expect(!b.applier.owesResync, "everything it has not applied is in the stream")
        // The stream drops the first three (as its age limit would) before node-b took them.
        for sequence in 1...3 { try await c.jetStream.deleteMessage(stream: "MICROLITH_CHANGES", sequence: UInt64(sequence)) }
        try await b.applier.prepare()
        #expect(b.applier.owesResync)
        let responder = ResyncResponder(store: a.store, client: c.client, logger: Logger(label: "resync"))
        let running = Task { await responder.run() }
        defer { running.cancel() }
        try await Task.sleep(for: .milliseconds(200))
        let reports = try await b.applier.resync()
        #expect(reports["data"]?.changed == 5)
        #expect(try await b.dump() == a.dump())
        await c.close()
    }
}

extension Array {
    fileprivate func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }

}
