import Foundation
import Logging
import MicrolithTestSupport
import NIOCore
import NIOPosix
import Testing

@testable import MicrolithNATS

/// The JetStream API against a real nats-server started with `-js` (file storage).
@Suite(.serialized, .timeLimit(.minutes(1))) struct NATSJetStreamTests {
    func connect(_ server: NATSServerProcess) async throws -> NATSClient {
        var c = NATSClient.Configuration(servers: [try NATSServerAddress(parsing: server.url)], options: NATSConnectOptions(name: "js-test"))
        c.reconnectWait = .milliseconds(20)
        c.maximumReconnectWait = .milliseconds(200)
        return try await NATSClient.connect(c)
    }

    /// A nats-server with JetStream, a client of it and the API, with `stream` made when given.
    func jetStream(_ stream: NATSStreamConfiguration? = nil) async throws -> (NATSServerProcess, NATSClient, NATSJetStream) {
        let server = try NATSServerProcess(["-js"])
        let client = try await connect(server)
        let js = NATSJetStream(client: client)
        if let stream { _ = try await js.createStream(stream) }
        return (server, client, js)
    }

    func text(_ messages: [NATSJetStreamMessage]) -> [String] {
        messages.map { String(buffer: $0.payload) }
    }

    @Test func streamsAreCreatedOnceAndAConflictingConfigurationIsRefused() async throws {
        let server = try NATSServerProcess(["-js"])
        let client = try await connect(server)
        let js = NATSJetStream(client: client)
        let config = NATSStreamConfiguration(name: "CHANGES", subjects: ["changes.>"], duplicateWindow: .seconds(60))
        let created = try await js.createStream(config)
        #expect(created.config.subjects == ["changes.>"] && created.config.storage == .file && created.state.messages == 0)
        #expect(created.config.duplicateWindow == .seconds(60))
        let again = try await js.createStream(config)
        #expect(again.config == created.config, "creating the same stream again returns it")
        var other = config
        other.subjects = ["other.>"]
        let conflict = await #expect(throws: NATSJetStreamError.self) { try await js.createStream(other) }
        #expect(conflict?.code == 400 && conflict?.message.contains("already in use") == true, "\(String(describing: conflict))")
        let updated = try await js.updateStream(
            NATSStreamConfiguration(name: "CHANGES", subjects: ["changes.>", "more.>"], duplicateWindow: .seconds(60)))
        #expect(updated.config.subjects == ["changes.>", "more.>"])
        let missing = await #expect(throws: NATSJetStreamError.self) { try await js.streamInfo("NOPE") }
        #expect(missing?.code == 404)
        await #expect(throws: NATSError.self) { try await js.createStream(NATSStreamConfiguration(name: "a.b", subjects: ["x"])) }
        try await js.deleteStream("CHANGES")
        await #expect(throws: NATSJetStreamError.self) { try await js.streamInfo("CHANGES") }
        await client.close()
    }

    @Test func aMessageIDIsStoredOnceAndAReceiptNamesItsSequence() async throws {
        let (server, client, js) = try await jetStream(NATSStreamConfiguration(name: "R", subjects: ["r.>"]))
        defer { server.stop() }
        let first = try await js.publish("r.n1", payload: ByteBuffer(string: "one"), messageID: "n1:1")
        #expect(first == (try JSONDecoder().decode(NATSPublishAck.self, from: Data(#"{"stream":"R","seq":1}"#.utf8))))
        let retried = try await js.publish("r.n1", payload: ByteBuffer(string: "one"), messageID: "n1:1")
        #expect(retried.sequence == 1 && retried.duplicate)
        let second = try await js.publish("r.n1", payload: ByteBuffer(string: "two"), messageID: "n1:2")
        #expect(second.sequence == 2 && !second.duplicate)
        #expect(try await js.streamInfo("R").state.messages == 2)
        let nowhere = await #expect(throws: NATSError.self) { try await js.publish("unstored", payload: ByteBuffer()) }
        #expect(nowhere?.kind == .noResponders && nowhere?.message.contains("no stream stores subject 'unstored'") == true)
        await client.close()
    }

    @Test func aPullConsumerDeliversInOrderAndRedeliversWhatIsNotAcknowledged() async throws {
        let (server, client, js) = try await jetStream(NATSStreamConfiguration(name: "S", subjects: ["s.*"]))
        defer { server.stop() }
        for i in 1...5 { _ = try await js.publish("s.a", payload: ByteBuffer(string: "m\(i)"), messageID: "id\(i)") }
        let consumer = try await js.createConsumer(
            stream: "S", NATSConsumerConfiguration(durableName: "node2", ackWait: .milliseconds(500)))
        #expect(consumer.name == "node2" && consumer.streamName == "S" && consumer.pending == 5)

        let batch = try await js.fetch(stream: "S", consumer: "node2", batch: 3, expires: .seconds(2))
        #expect(text(batch) == ["m1", "m2", "m3"])
        #expect(batch.map(\.streamSequence) == [1, 2, 3] && batch.map(\.deliveries) == [1, 1, 1])
        #expect(batch[0].stream == "S" && batch[0].consumer == "node2" && batch[2].pending == 2)
        #expect(batch[0].message.headers?["Nats-Msg-Id"] == "id1")
        try await batch[0].ack()
        try batch[1].term()
        try batch[2].nak()

        // m3 comes back at once (nak), beside m4 and m5; m2 never again.
        let next = try await js.fetch(stream: "S", consumer: "node2", batch: 10, expires: .milliseconds(300))
        #expect(text(next).sorted() == ["m3", "m4", "m5"])
        #expect(next.map { "\(String(buffer: $0.payload)):\($0.deliveries)" }.sorted() == ["m3:2", "m4:1", "m5:1"])
        for m in next { try await m.ack() }
        let empty = try await js.fetch(stream: "S", consumer: "node2", batch: 10, noWait: true)
        #expect(empty.isEmpty)

        // A delivery nobody acknowledges comes back after the ack wait.
        _ = try await js.publish("s.b", payload: ByteBuffer(string: "m6"))
        let unacked = try await js.fetch(stream: "S", consumer: "node2", batch: 1)
        #expect(text(unacked) == ["m6"])
        try await Task.sleep(for: .milliseconds(700))
        let again = try await js.fetch(stream: "S", consumer: "node2", batch: 1, expires: .seconds(2))
        #expect(text(again) == ["m6"] && again.first?.deliveries == 2)
        try await again[0].ack()
        let info = try await js.consumerInfo(stream: "S", name: "node2")
        #expect(info.ackFloor.streamSequence == 6 && info.ackPending == 0 && info.pending == 0)
        await client.close()
    }

    @Test func anExpiredPullReturnsWhatItGotAndAMissingConsumerIsNamed() async throws {
        let (server, client, js) = try await jetStream(NATSStreamConfiguration(name: "E", subjects: ["e"], storage: .memory))
        defer { server.stop() }
        _ = try await js.createConsumer(stream: "E", NATSConsumerConfiguration(durableName: "c"))
        _ = try await js.publish("e", payload: ByteBuffer(string: "only"))
        let started = ContinuousClock.now
        let got = try await js.fetch(stream: "E", consumer: "c", batch: 5, expires: .milliseconds(300))
        #expect(text(got) == ["only"])
        #expect(ContinuousClock.now - started >= .milliseconds(250), "it waited for more until the pull expired")
        // The server does not answer a pull of a consumer it lacks: the fetch gives up.
        let quick = NATSJetStream(client: client, timeout: .milliseconds(500))
        let missing = await #expect(throws: NATSError.self) {
            try await quick.fetch(stream: "E", consumer: "nobody", batch: 1, expires: .milliseconds(300))
        }
        #expect(missing?.kind == .timeout && missing?.message.contains("does E/nobody exist?") == true, "\(String(describing: missing))")
        await #expect(throws: NATSError.self) { try await js.fetch(stream: "E", consumer: "c", batch: 0) }
        await client.close()
    }

    @Test func aConsumerResumesWhereItWasAfterTheServerRestarts() async throws {
        let (server, client, js) = try await jetStream(NATSStreamConfiguration(name: "D", subjects: ["d.>"]))
        _ = try await js.createConsumer(stream: "D", NATSConsumerConfiguration(durableName: "n"))
        for i in 1...5 { _ = try await js.publish("d.x", payload: ByteBuffer(string: "\(i)"), messageID: "d\(i)") }
        let firstTwo = try await js.fetch(stream: "D", consumer: "n", batch: 2)
        for m in firstTwo { try await m.ack() }

        server.stop()
        try server.start()
        let back = ContinuousClock.now
        while !client.isConnected && ContinuousClock.now - back < .seconds(10) { try await Task.sleep(for: .milliseconds(10)) }
        // JetStream takes a moment to recover its streams after a start.
        var rest: [NATSJetStreamMessage] = []
        for _ in 0..<50 where rest.isEmpty {
            rest = (try? await js.fetch(stream: "D", consumer: "n", batch: 10, expires: .milliseconds(300))) ?? []
            if rest.isEmpty { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(text(rest) == ["3", "4", "5"])
        // The message ids are remembered too: a retried publish is still a duplicate.
        let retried = try await js.publish("d.x", payload: ByteBuffer(string: "5"), messageID: "d5")
        #expect(retried.duplicate && retried.sequence == 5)
        await client.close()
    }

    @Test func deliveriesAreReadFromBothReplySubjectForms() {
        let client = NATSClient(configuration: .init(servers: []), group: MultiThreadedEventLoopGroup.singleton, logger: Logger(label: "test"))
        let old = NATSJetStreamMessage(
            NATSMessage(subject: "s", sid: "1", replyTo: "$JS.ACK.S.C.2.17.9.1700000000000000000.4", payload: ByteBuffer()), client: client)
        #expect(old?.stream == "S" && old?.consumer == "C" && old?.deliveries == 2 && old?.streamSequence == 17)
        #expect(old?.consumerSequence == 9 && old?.pending == 4 && old?.storedAtNanoseconds == 1_700_000_000_000_000_000)
        let domain = NATSJetStreamMessage(
            NATSMessage(subject: "s", sid: "1", replyTo: "$JS.ACK.hub.ACC.S.C.1.5.5.1700000000000000000.0.xyz", payload: ByteBuffer()),
            client: client)
        #expect(domain?.stream == "S" && domain?.streamSequence == 5 && domain?.pending == 0)
        #expect(NATSJetStreamMessage(NATSMessage(subject: "s", sid: "1", replyTo: "_INBOX.x", payload: ByteBuffer()), client: client) == nil)
        #expect(
            NATSJetStreamMessage(NATSMessage(subject: "s", sid: "1", replyTo: "$JS.ACK.S.C.x.1.1.1.1", payload: ByteBuffer()), client: client) == nil)
    }
}
