import Foundation
import GRDB
import Logging
import MicrolithJSON
import MicrolithNATS
import MicrolithStore
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
