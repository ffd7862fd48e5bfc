import MicrolithJSON
import MicrolithMQTT
import MicrolithStore
import NIOCore
import Testing

@Suite("MQTTBroker: a returning persistent session's missed table changes")
struct MQTTReplayTests {
    @Test("missed writes replay with the record as payload, a missed delete with an empty one")
    func missedWritesAndDeletes() async throws {
        try await withBroker { store, server in
            let table = store.sensor
            let first = try await TestClient.connect(port: server.port, version: .v3_1_1)
            try await first.handshake(clientID: "durable", cleanStart: false)
            try await first.send(
                .subscribe(MQTTSubscribe(packetID: 1, subscriptions: [MQTTSubscription(topicFilter: "Sensor/+", qos: .atLeastOnce)])))
            _ = try await first.receive()
            try await first.send(.disconnect(MQTTDisconnect(reasonCode: 0, properties: MQTTProperties())))
            #expect(try await first.closed())
            try await store.write { txn in _ = try txn.put(table, id: .string("s1"), body: ["temp": .double(5)]) }
            _ = try await store.write { txn in try txn.patch(table, id: .string("s1"), patch: ["temp": .double(6)]) }
            try await store.write { txn in _ = try txn.delete(table, id: .string("s1")) }
            let back = try await TestClient.connect(port: server.port, version: .v3_1_1)
            #expect(try await back.handshake(clientID: "durable", cleanStart: false).sessionPresent)
            var payloads: [JSONValue?] = []
            for _ in 0..<3 {
                let p = try publishOf(try await back.receive())
                #expect(p.topic == "Sensor/s1")
                payloads.append(p.payload.readableBytes == 0 ? nil : try JSONParser.parse(p.payload.readableBytesView))
                if let id = p.packetID { try await back.send(.ack(MQTTAck(kind: .puback, packetID: id))) }
            }
            #expect(payloads.map { $0?.objectValue?["temp"] } == [.double(5), .double(6), nil])
        }
    }
}
