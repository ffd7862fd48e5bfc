import Foundation
import Logging
import MicrolithJSON
import MicrolithNATS
import MicrolithStore
import NIOCore
import Testing

@testable import MicrolithReplication

/// Own entries waiting together travel as one message: its limits, its subject, its id.
extension ChangeLogPublisherTests {
    @Test func entriesWaitingTogetherShareMessagesUpToTheLimit() async throws {
        let f = try await fixture()
        let table = try #require(f.store.table(name: "Todo"))
        try await f.store.write { txn in
            for i in 1...300 { _ = try txn.put(table, id: .string("r\(i)"), body: ["title": .string("t\(i)")]) }
        }
        #expect(try await f.publisher.publishPending() == 300)
        let messages = try await f.streamed()
        let batches = try messages.map { try ReplicatedChange.entries(json: $0.payload) }
        #expect(batches.map(\.count) == [128, 128, 44], "at most entriesPerMessage (128) each")
        let changes = batches.flatMap { $0 }
        #expect(changes.map(\.sequence) == Array(1...300), "in log order")
        #expect(changes.map(\.previous) == [0] + Array(1...299), "each still names the one before, across messages")
        for (message, batch) in zip(messages, batches) {
            #expect(message.message.headers?["Nats-Msg-Id"] == ReplicatedChange.messageID(first: batch[0], last: batch[batch.count - 1]))
        }
        await f.close()
    }

    @Test func aByteLimitSplitsMessagesAndOneLargeEntryStillGoes() async throws {
        var publishing = ChangeLogPublisher.Configuration()
        publishing.bytesPerMessage = 2048
        let f = try await fixture(publishing: publishing)
        let table = try #require(f.store.table(name: "Todo"))
        let large = String(repeating: "x", count: 4000)
        try await f.store.write { txn in
            for i in 1...20 { _ = try txn.put(table, id: .string("r\(i)"), body: ["title": .string("t\(i)")]) }
            _ = try txn.put(table, id: .string("large"), body: ["title": .string(large)])
            _ = try txn.put(table, id: .string("after"), body: ["title": "small"])
        }
        #expect(try await f.publisher.publishPending() == 22)
        let messages = try await f.streamed()
        #expect(messages.allSatisfy { $0.payload.readableBytes <= 2048 || $0.payload.readableBytes > 4000 })
        let batches = try messages.map { try ReplicatedChange.entries(json: $0.payload) }
        #expect(batches.count > 2, "split by bytes: \(batches.map(\.count))")
        #expect(batches.contains { $0.count == 1 && $0[0].id == .string("large") }, "the large entry alone")
        #expect(batches.flatMap { $0 }.map(\.sequence) == Array(1...22))
        await f.close()
    }

    @Test func aMessageOfSeveralTablesSaysSoInItsSubject() async throws {
        let schema = """
            type Todo @table @export {
                id: ID @primaryKey
                title: String
            }
            type Note @table @export {
                id: ID @primaryKey
                text: String
            }
            """
        let f = try await fixture(schema: schema)
        let todo = try #require(f.store.table(name: "Todo"))
        let note = try #require(f.store.table(name: "Note"))
        try await f.store.write { txn in _ = try txn.put(todo, id: .string("1"), body: ["title": "one"]) }
        #expect(try await f.publisher.publishPending() == 1)
        try await f.store.write { txn in
            _ = try txn.put(todo, id: .string("2"), body: ["title": "two"])
            _ = try txn.put(note, id: .string("n"), body: ["text": "a note"])
        }
        #expect(try await f.publisher.publishPending() == 2)
        let messages = try await f.streamed()
        #expect(
            messages.map(\.message.subject) == [
                "microlith.changes.node-a.data.Todo", "microlith.changes.node-a.data.\(ReplicationStream.mixedTables)",
            ])
        #expect(try ReplicatedChange.entries(json: messages[1].payload).map(\.table) == ["Todo", "Note"])
        await f.close()
    }

    @Test(arguments: [
        ("[]", "holds none"),
        ("[{\"node\":\"n\"}]", "lacks its"),
        ("[1,2]", "not a JSON object"),
        ("{", "not JSON"),
    ])
    func messagesThatAreNotEntriesAreRefusedWithWhy(_ text: String, _ problem: String) {
        #expect {
            _ = try ReplicatedChange.entries(json: ByteBuffer(string: text))
        } throws: { error in
            (error as? ReplicationError)?.message.contains(problem) == true
        }
    }
}

@Suite struct ReplicationStreamTests {
    @Test func aNamedStreamScopesEverySubjectToItsName() {
        let stream = ReplicationStream.named("SHOP", replicas: 3)
        #expect(stream.name == "SHOP" && stream.replicas == 3)
        #expect(stream.subject(node: "n1", database: "data", table: "T") == "microlith.SHOP.changes.n1.data.T")
        #expect(stream.repairSubject(node: "n1", database: "data") == "microlith.SHOP.repair.n1.data")
        #expect(stream.appliedSubject(origin: "n1", database: "data") == "microlith.SHOP.applied.n1.data")
        #expect(stream.resyncPrefix == "microlith.SHOP.resync")
        #expect(stream.configuration.subjects == ["microlith.SHOP.changes.>"])
        let other = ReplicationStream.named("OTHER")
        #expect(!other.subject(node: "n1", database: "data", table: "T").hasPrefix(stream.subjectPrefix + "."))
        #expect(ReplicationStream.named(ReplicationStream.defaultName) == ReplicationStream(), "the default keeps its subjects")
    }
}
