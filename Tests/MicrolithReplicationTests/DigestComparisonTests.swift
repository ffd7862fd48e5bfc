import Foundation
import GRDB
import Logging
import MicrolithJSON
import MicrolithNATS
import MicrolithStore
import MicrolithTestSupport
import NIOCore
import Testing

@testable import MicrolithReplication

/// Periodic digests find rows that neither the stream nor their origin's log still hold, and
/// merge them, on stamps, on the node that lacks the newer row.
extension ChangeApplierTests {
    /// Deletes `node`'s last change-log entry: a write its log (and so the stream) lost.
    func forgetLastEntry(of node: Node) async throws {
        try await node.store.write { txn in
            try txn.db.execute(sql: "DELETE FROM _microlith_changelog WHERE seq = (SELECT MAX(seq) FROM _microlith_changelog)")
        }
    }

    @Test func digestsFindRowsNobodyReplicatedAndMergeThemOnStamps() async throws {
        let c = try await cluster(["node-a", "node-b"]) { name, directory, jetStream in
            var applying = ChangeApplier.Configuration()
            applying.digestSettled = .zero
            applying.digestBuckets = 16
            return try self.node(name, directory: directory, jetStream: jetStream, applier: applying)
        }
        let (a, b) = (c.nodes[0], c.nodes[1])
        for i in 1...100 { try await a.put("r\(i)", ["title": .string("a \(i)")]) }
        try await a.delete("r100")
        try await c.sync()
        #expect(try await a.dump() == b.dump())
        // Writes only their own node holds: a new record and a later title on node-a, a later
        // title on node-b, and a delete on node-a.
        try await a.put("lost", ["title": "only on a"])
        try await forgetLastEntry(of: a)
        try await a.put("r5", ["title": "a, later"])
        try await forgetLastEntry(of: a)
        try await a.delete("r9")
        try await forgetLastEntry(of: a)
        try await b.put("r7", ["title": "b, later"])
        try await forgetLastEntry(of: b)
        try await c.sync()
        try await Task.sleep(for: .milliseconds(20))  // the writes settle past the cutoff

        let responders = [a, b].map { ResyncResponder(store: $0.store, client: c.client, logger: Logger(label: "resync")) }
        let running = responders.map { responder in Task { await responder.run() } }
        defer { for task in running { task.cancel() } }
        try await Task.sleep(for: .milliseconds(200))  // the subscriptions reach the server

        let onB = try #require(try await b.applier.compareDigests()["data"])
        #expect(onB.peer == "node-a" && onB.tables == 1)
        #expect(onB.differingBuckets >= 1 && onB.differingBuckets <= 4 && onB.differingTables == ["Todo"], "\(onB)")
        #expect(onB.changed == 3, "the new record, the later title and the delete: \(onB)")
        #expect(onB.received < 100, "only the buckets that differ are sent: \(onB)")
        #expect(try await b.store.get(b.todo, .string("lost"))?.record["title"] == "only on a")
        #expect(try await b.store.get(b.todo, .string("r5"))?.record["title"] == "a, later")
        #expect(try await b.store.get(b.todo, .string("r9")) == nil)
        #expect(try await b.store.get(b.todo, .string("r7"))?.record["title"] == "b, later", "its own later write stays")
        #expect(try await a.store.get(a.todo, .string("r7"))?.record["title"] == "a 7", "a comparison changes only the node that asks")

        let onA = try #require(try await a.applier.compareDigests()["data"])
        #expect(onA.peer == "node-b" && onA.changed == 1, "\(onA)")
        #expect(try await a.store.get(a.todo, .string("r7"))?.record["title"] == "b, later")
        for node in [a, b] {
            let again = try #require(try await node.applier.compareDigests()["data"])
            #expect(again.differingBuckets == 0 && again.received == 0, "\(again)")
        }
        #expect(try await a.dump() == b.dump())
        #expect(b.applier.lastDigestReports?.reports["data"]?.differingBuckets == 0)
        await c.close()
    }

    @Test func rowsNewerThanTheCutoffAreLeftOutOfDigests() async throws {
        let c = try await cluster(["node-a", "node-b"]) { name, directory, jetStream in
            var applying = ChangeApplier.Configuration()
            applying.digestSettled = .seconds(60)
            return try self.node(name, directory: directory, jetStream: jetStream, applier: applying)
        }
        let (a, b) = (c.nodes[0], c.nodes[1])
        try await a.put("fresh", ["title": "not replicated yet"])
        let responder = ResyncResponder(store: a.store, client: c.client, logger: Logger(label: "resync"))
        let running = Task { await responder.run() }
        defer { running.cancel() }
        try await Task.sleep(for: .milliseconds(200))
        let report = try #require(try await b.applier.compareDigests()["data"])
        #expect(report.differingBuckets == 0 && report.received == 0, "a write still on its way is not divergence: \(report)")
        await c.close()
    }
}

/// A parked change is not applied: the notices to its origin say so.
extension ChangeApplierTests {
    @Test func aParkedChangeIsNotCountedAsAppliedForReplicateTo() async throws {
        let other = Self.todoSchema(title: "Int")
        let c = try await cluster(["node-a", "node-b"]) { name, directory, jetStream in
            try self.node(name, directory: directory, jetStream: jetStream, schema: name == "node-b" ? other : Self.schema)
        }
        let (a, b) = (c.nodes[0], c.nodes[1])
        let progress = PeerProgress(node: "node-a", stream: ReplicationStream(), logger: Logger(label: "progress"))
        let following = Task { await progress.run(client: c.client) }
        defer { following.cancel() }
        try await Task.sleep(for: .milliseconds(200))  // the subscription reaches the server
        try await a.put("1", ["title": "text"])  // node-b's schema refuses it: parked there
        try await a.put("2", ["tags": ["fits"]])
        try await a.publisher.publishPending()
        let report = try await b.applier.applyNext()
        #expect(report.refused == 1 && report.applied == 1)
        // The parked entry first shows as a gap (the next names it); asked for again, it is
        // parked again and the gap closes: the notices must still leave it out.
        let responder = RepairResponder(store: a.store, client: c.client, logger: Logger(label: "repair-a"))
        let answering = Task { await responder.run() }
        defer { answering.cancel() }
        try await Task.sleep(for: .milliseconds(200))
        var started = ContinuousClock.now
        while try await !b.store.gaps().isEmpty && ContinuousClock.now - started < .seconds(5) {
            try await b.applier.fillGaps()
        }
        #expect(try await b.store.gaps().isEmpty)
        try await a.put("3", ["tags": ["fits too"]])
        try await a.publisher.publishPending()
        #expect(try await b.applier.applyNext().applied == 1)
        started = ContinuousClock.now
        while progress.nodes(applied: 3, database: "data").isEmpty && ContinuousClock.now - started < .seconds(5) {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(progress.nodes(applied: 3, database: "data") == ["node-b"])
        #expect(progress.nodes(applied: 2, database: "data") == ["node-b"])
        #expect(progress.nodes(applied: 1, database: "data") == [], "the parked entry is not counted")
        await c.close()
    }
}

/// A node's own entries come back from the stream in shared messages: passed over unread.
extension ChangeApplierTests {
    @Test func ownEntriesSharingMessagesArePassedOverUnread() async throws {
        let c = try await cluster(["node-a", "node-b"])
        let (a, b) = (c.nodes[0], c.nodes[1])
        let todo = a.todo
        try await a.store.write { txn in
            for i in 1...200 { _ = try txn.put(todo, id: .string("r\(i)"), body: ["title": .string("t\(i)")]) }
        }
        #expect(try await a.publisher.publishPending() == 200)
        var own = ChangeApplier.Report()
        for _ in 0..<3 where own.received < 2 {
            let report = try await a.applier.applyNext()
            own.received += report.received
            own.own += report.own
            own.applied += report.applied
            own.superseded += report.superseded
        }
        #expect(own.received == 2 && own.own == 2 && own.applied == 0 && own.superseded == 0, "\(own)")
        #expect(try await b.applier.applyNext().applied == 200)
        await c.close()
    }
}

/// A message with an entry this node cannot read: the others are applied, the message parked.
extension ChangeApplierTests {
    @Test func anUnreadableEntryParksItsMessageAndTheOthersAreApplied() async throws {
        let c = try await cluster(["node-a", "node-b"])
        let b = c.nodes[1]
        let good = ReplicatedChange(
            node: "node-a", database: "data", sequence: 1, transaction: 7, table: "Todo", id: .string("fine"), operation: .put,
            version: HybridLogicalClock.systemMilliseconds() << 16, record: ["id": "fine", "title": "applied"], schema: b.todo.replicationDigest)
        var payload = ByteBuffer(string: "[")
        var entry = good.json
        payload.writeBuffer(&entry)
        payload.writeString(#",{"node":"node-a","op":"merge"}]"#)
        _ = try await c.jetStream.publish("microlith.changes.node-a.data.Todo", payload: payload, messageID: "node-a:data:1:7:2:7")
        let report = try await b.applier.applyNext()
        #expect(report.received == 1 && report.applied == 1 && report.malformed == 1, "\(report)")
        #expect(try await b.store.get(b.todo, .string("fine"))?.record["title"] == "applied")
        #expect(try await b.applier.parkedCount() == 1)
        #expect(try await b.applier.retryParked() == 0, "still unreadable: it stays parked")
        #expect(try await b.applier.parkedCount() == 1)
        await c.close()
    }
}

/// A stream made by a version that did not scope its subjects takes the scoped ones too.
@Suite(.serialized, .timeLimit(.minutes(1))) struct ReplicationStreamUpgradeTests {
    @Test func aNamedStreamWithTheOldSubjectsTakesTheNewOnesBesideThem() async throws {
        let server = try NATSServerProcess(["-js"])
        let client = try await NATSClient.connect(NATSClient.Configuration(servers: [try NATSServerAddress(parsing: server.url)]))
        let jetStream = NATSJetStream(client: client, timeout: .seconds(2))
        _ = try await jetStream.createStream(NATSStreamConfiguration(name: "SHOP", subjects: ["microlith.changes.>"]))
        let stream = ReplicationStream.named("SHOP")
        try await stream.prepare(jetStream)
        let info = try await jetStream.streamInfo("SHOP")
        #expect(Set(info.config.subjects) == ["microlith.changes.>", "microlith.SHOP.changes.>"])
        // One taking other subjects is still refused.
        _ = try await jetStream.createStream(NATSStreamConfiguration(name: "ELSE", subjects: ["orders.>"]))
        await #expect(throws: ReplicationError.self) { try await ReplicationStream.named("ELSE").prepare(jetStream) }
        await client.close()
    }
}
