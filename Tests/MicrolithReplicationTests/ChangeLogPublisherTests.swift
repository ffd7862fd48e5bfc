import Foundation
import GRDB
import Logging
import MicrolithJSON
import MicrolithNATS
import MicrolithSchema
import MicrolithStore
import MicrolithTestSupport
import NIOCore
import Testing

@testable import MicrolithReplication

/// The outbox: this node's change log published to a real nats-server's JetStream.
@Suite(.serialized, .timeLimit(.minutes(1))) struct ChangeLogPublisherTests {
    static let schema = """
        type Todo @table @export {
            id: ID @primaryKey
            title: String
        }
        """

    struct Fixture {
        let server: NATSServerProcess
        let client: NATSClient
        let jetStream: NATSJetStream
        let store: Store
        let directory: String
        let publisher: ChangeLogPublisher

        func close() async {
            store.close()
            await client.close()
            try? FileManager.default.removeItem(atPath: directory)
        }

        /// Every message in the stream, in order (a fresh consumer reads them all).
        func streamed(_ name: String = "reader-\(UUID().uuidString.prefix(8))") async throws -> [NATSJetStreamMessage] {
            _ = try await jetStream.createConsumer(stream: "MICROLITH_CHANGES", NATSConsumerConfiguration(durableName: name))
            return try await jetStream.fetch(stream: "MICROLITH_CHANGES", consumer: name, batch: 256, expires: .milliseconds(300))
        }
    }

    func fixture(
        retentionSeconds: Int = 86_400, schema: String = Self.schema,
        publishing: ChangeLogPublisher.Configuration = ChangeLogPublisher.Configuration()
    ) async throws -> Fixture {
        let server = try NATSServerProcess(["-js"])
        var c = NATSClient.Configuration(servers: [try NATSServerAddress(parsing: server.url)])
        c.reconnectWait = .milliseconds(20)
        c.maximumReconnectWait = .milliseconds(100)
        let client = try await NATSClient.connect(c)
        let directory = NSTemporaryDirectory() + "microlith-replication-\(UUID().uuidString)"
        var configuration = StoreConfiguration(
            directory: directory, durability: .normal, nodeID: "node-a", changeLogRetentionSeconds: retentionSeconds)
        configuration.keepUnpublishedChanges = true
        let store = try Store.open(schema: try SchemaParser.parse(schema, file: "schema.graphql"), configuration: configuration)
        let jetStream = NATSJetStream(client: client, timeout: .seconds(2))
        let publisher = ChangeLogPublisher(store: store, jetStream: jetStream, configuration: publishing, logger: Logger(label: "test"))
        try await publisher.prepare()
        return Fixture(server: server, client: client, jetStream: jetStream, store: store, directory: directory, publisher: publisher)
    }

    func put(_ store: Store, _ id: String, _ title: String) async throws {
        let table = try #require(store.table(name: "Todo"))
        try await store.write { txn in _ = try txn.put(table, id: .string(id), body: ["title": .string(title)]) }
    }

    @Test func everyLocalWriteIsPublishedOnceInOrder() async throws {
        let f = try await fixture()
        try await put(f.store, "1", "first")
        try await put(f.store, "2", "second")
        let table = try #require(f.store.table(name: "Todo"))
        try await f.store.write { txn in _ = try txn.delete(table, id: .string("1")) }
        #expect(try await f.publisher.publishPending() == 3)
        #expect(try await f.publisher.publishPending() == 0, "nothing twice")
        #expect(try await f.publisher.published() == 3)

        // Three entries waiting together travel as one message, under one id naming the first
        // and the last.
        let messages = try await f.streamed()
        #expect(messages.map(\.message.subject) == ["microlith.changes.node-a.data.Todo"])
        let changes = try messages.flatMap { try ReplicatedChange.entries(json: $0.payload) }
        try #require(changes.count == 3)
        #expect(
            messages.map { $0.message.headers?["Nats-Msg-Id"] }
                == ["node-a:data:1:\(changes[0].transaction):3:\(changes[2].transaction)"])
        #expect(changes.map(\.previous) == [0, 1, 2], "each still names the one before")
        #expect(changes.map(\.sequence) == [1, 2, 3])
        #expect(changes.map(\.operation) == [.put, .put, .delete])
        #expect(changes.map(\.id) == [.string("1"), .string("2"), .string("1")])
        #expect(changes[1].record?["title"] == .string("second") && changes[2].record == nil)
        #expect(changes.allSatisfy { $0.node == "node-a" && $0.database == "data" && $0.table == "Todo" })
        #expect(changes[0].version < changes[1].version && changes[1].version < changes[2].version)
        await f.close()
    }

    @Test func writesMadeWhileNATSIsAwayArePublishedWhenItIsBackAndNeverTrimmedBefore() async throws {
        let f = try await fixture(retentionSeconds: 0)
        try await put(f.store, "a", "before")
        #expect(try await f.publisher.publishPending() == 1)
        f.server.stop()
        try await put(f.store, "b", "during 1")
        try await put(f.store, "c", "during 2")
        await #expect(throws: (any Error).self) { try await f.publisher.publishPending() }
        #expect(try await f.publisher.published() == 1)
        // A retention of zero trims everything published, and nothing that is not.
        try await Task.sleep(for: .milliseconds(5))
        #expect(try await f.store.trimChangeLog() == 1)
        #expect(try await f.store.changes(after: 0).map(\.id) == [.string("b"), .string("c")])

        try f.server.start()
        var published = 0
        for _ in 0..<100 where published == 0 {
            published = (try? await f.publisher.publishPending()) ?? 0
            if published == 0 { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(published == 2)
        let titles = try await f.streamed().flatMap { try ReplicatedChange.entries(json: $0.payload).map { $0.record?["title"] } }
        #expect(titles == [.string("before"), .string("during 1"), .string("during 2")])
        await f.close()
    }

    @Test func aRepublishAfterACrashIsADuplicateNotASecondMessage() async throws {
        let f = try await fixture()
        for i in 1...3 { try await put(f.store, "\(i)", "t\(i)") }
        #expect(try await f.publisher.publishPending() == 3)
        // As if the process died after the stream's receipts and before it recorded them, and
        // started again.
        try await f.store.write { txn in
            try txn.db.execute(sql: "DELETE FROM _microlith_meta WHERE key = ?", arguments: [Store.publishedChangeKey])
        }
        let restarted = ChangeLogPublisher(store: f.store, jetStream: f.jetStream, logger: Logger(label: "test"))
        #expect(try await restarted.publishPending() == 3)
        #expect(try await f.jetStream.streamInfo("MICROLITH_CHANGES").state.messages == 1, "the same message, under the same id")
        await f.close()
    }

    @Test func runningItPublishesEachCommitWithoutBeingAsked() async throws {
        let f = try await fixture()
        let running = Task { await f.publisher.run() }
        try await put(f.store, "x", "live")
        var count: UInt64 = 0
        let started = ContinuousClock.now
        while count == 0 && ContinuousClock.now - started < .seconds(5) {
            count = try await f.jetStream.streamInfo("MICROLITH_CHANGES").state.messages
            if count == 0 { try await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(count == 1)
        #expect(ContinuousClock.now - started < .milliseconds(900), "a commit wakes it; it does not wait for the poll")
        running.cancel()
        await running.value
        await f.close()
    }

    @Test func aStreamDeletedUnderARunningPublisherIsMadeAgain() async throws {
        let f = try await fixture()
        let running = Task { await f.publisher.run() }
        try await put(f.store, "1", "one")
        try await f.jetStream.deleteStream("MICROLITH_CHANGES")
        try await put(f.store, "2", "two")
        var count: UInt64 = 0
        let started = ContinuousClock.now
        while count == 0 && ContinuousClock.now - started < .seconds(10) {
            count = (try? await f.jetStream.streamInfo("MICROLITH_CHANGES").state.messages) ?? 0
            if count == 0 { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(count >= 1, "the stream is back and takes what followed")
        running.cancel()
        await running.value
        await f.close()
    }

    @Test func aChangeReadsBackAsItWasWrittenAndMistakesAreNamed() throws {
        let change = ReplicatedChange(
            node: "n1", database: "data", sequence: 7, transaction: 3, table: "Todo", id: .int(42), operation: .patch, version: 99,
            record: ["title": .string("x"), "n": .int(1)], schema: "00ff")
        #expect(try ReplicatedChange(json: change.json) == change)
        #expect(change.messageID == "n1:data:7:3")
        for (text, words) in [
            ("[]", "not a JSON object"), ("{", "not JSON"),
            (#"{"node":"n","database":"d","seq":1,"txn":1,"table":"T","id":true,"op":"put","version":1,"record":{}}"#, "'id'"),
            (#"{"node":"n","database":"d","seq":1,"txn":1,"table":"T","id":"a","op":"merge","version":1,"record":{}}"#, "unknown 'op'"),
            (#"{"node":"n","database":"d","seq":1,"txn":1,"table":"T","id":"a","op":"put","version":1,"record":null}"#, "carries no record"),
            (#"{"node":"n","database":"d","txn":1,"table":"T","id":"a","op":"delete","version":1}"#, "'seq'"),
            (#"{"node":"n","database":"d","seq":1,"txn":1,"table":"T","id":"a","op":"delete","version":1}"#, "'schema'"),
        ] {
            #expect(throws: ReplicationError.self) { try ReplicatedChange(json: ByteBuffer(string: text)) }
            do {
                _ = try ReplicatedChange(json: ByteBuffer(string: text))
            } catch {
                #expect(error.message.contains(words), "\(text): \(error.message)")
            }
        }
    }
}
