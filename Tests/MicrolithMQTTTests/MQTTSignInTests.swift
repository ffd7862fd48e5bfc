import MicrolithJSON
import MicrolithMQTT
import MicrolithStore
import MicrolithTables
import NIOCore
import Testing

/// The anonymous role reads sensors; `writer` also writes them.
private let sensorRoles = [
    Roles.Declaration(name: Roles.anonymous, tables: [("Sensor", [.read, .subscribe])]),
    Roles.Declaration(name: "writer", tables: [("Sensor", [.read, .subscribe, .insert, .update, .delete])]),
]

@Suite("MQTT: a CONNECT's user name and password sign in as the app's users, and their roles hold")
struct MQTTSignInTests {
    func retainedPublish(_ client: TestClient, _ topic: String, _ payload: String, id: UInt16) async throws -> MQTTAck {
        try await client.send(
            .publish(MQTTPublish(topic: topic, payload: ByteBuffer(string: payload), qos: .atLeastOnce, retain: true, packetID: id)))
        guard case .ack(let ack) = try await client.receive() else { throw CancellationError() }
        return ack
    }

    @Test func aSignedInClientWritesWithItsRolesAndAnAnonymousOneMayNot() async throws {
        try await withBroker(roles: sensorRoles, users: [("ann", "s3cret", ["writer"])]) { store, server in
            let anonymous = try await TestClient.connect(port: server.port)
            try await anonymous.handshake(clientID: "anon")
            let refused = try await retainedPublish(anonymous, "Sensor/s1", #"{"temp":1}"#, id: 1)
            #expect(refused.reasonCode == 0x87, "the anonymous role may not insert sensors")
            #expect(try await store.get(store.sensor, .string("s1")) == nil)
            await anonymous.close()

            let ann = try await TestClient.connect(port: server.port)
            let ack = try await ann.connect(clientID: "ann-1", username: "ann", password: "s3cret")
            #expect(ack.reasonCode == 0)
            let stored = try await retainedPublish(ann, "Sensor/s1", #"{"temp":2}"#, id: 1)
            #expect(stored.reasonCode == 0)
            #expect(try await store.get(store.sensor, .string("s1"))?.record["temp"] == .int(2))
            await ann.close()
        }
    }

    @Test(arguments: [MQTTProtocolVersion.v5, .v3_1_1])
    func wrongCredentialsAreRefusedAndTheConnectionClosed(version: MQTTProtocolVersion) async throws {
        try await withBroker(roles: sensorRoles, users: [("ann", "s3cret", ["writer"])]) { _, server in
            for (name, password) in [("ann", "wrong"), ("bob", "s3cret"), ("ann", "")] {
                let client = try await TestClient.connect(port: server.port, version: version)
                let ack = try await client.connect(clientID: "c", username: name, password: password)
                #expect(ack.reasonCode == (version == .v5 ? 0x86 : 0x04), "\(name)/\(password)")
                #expect(try await client.closed())
            }
        }
    }

    @Test func repeatedFailuresForOneUserAreRefusedForAWhile() async throws {
        try await withBroker(users: [("ann", "s3cret", ["writer"])]) { _, server in
            for attempt in 1...5 {
                let client = try await TestClient.connect(port: server.port)
                #expect(try await client.connect(clientID: "c", username: "ann", password: "no\(attempt)").reasonCode == 0x86)
            }
            // Now even the right password waits: the limit is per user name.
            let client = try await TestClient.connect(port: server.port)
            let ack = try await client.connect(clientID: "c", username: "ann", password: "s3cret")
            #expect(ack.reasonCode == 0x9F, "connection rate exceeded")
            #expect(ack.properties.reasonString?.contains("too many failed sign-ins") == true)
        }
    }

    @Test func repeatedFailuresFromOneAddressAreRefusedWhateverTheUserName() async throws {
        try await withBroker(users: [("ann", "s3cret", ["writer"])]) { _, server in
            // 20 failures per address and minute, spread over names that each stay below their own limit.
            for attempt in 0..<20 {
                let client = try await TestClient.connect(port: server.port)
                #expect(try await client.connect(clientID: "c", username: "guess\(attempt % 5)", password: "x\(attempt)").reasonCode == 0x86)
            }
            let client = try await TestClient.connect(port: server.port)
            #expect(try await client.connect(clientID: "c", username: "ann", password: "s3cret").reasonCode == 0x9F)
        }
    }

    @Test func withoutAnonymousClientsACONNECTWithoutAUserNameIsRefused() async throws {
        try await withBroker(users: [("ann", "s3cret", ["writer"])], { $0.allowAnonymous = false }) { _, server in
            let anonymous = try await TestClient.connect(port: server.port)
            #expect(try await anonymous.connect(clientID: "a", username: nil, password: nil).reasonCode == 0x87)
            let ann = try await TestClient.connect(port: server.port)
            #expect(try await ann.connect(clientID: "b", username: "ann", password: "s3cret").reasonCode == 0)
            await ann.close()
        }
    }

    @Test func aSessionIsResumedOnlyByTheUserWhoMadeIt() async throws {
        try await withBroker(roles: sensorRoles, users: [("ann", "s3cret", ["writer"]), ("bob", "b0b", ["writer"])]) { _, server in
            let ann = try await TestClient.connect(port: server.port)
            let first = try await ann.connect(clientID: "shared-id", username: "ann", password: "s3cret", cleanStart: false, sessionExpiry: 600)
            #expect(first.reasonCode == 0 && !first.sessionPresent)
            #expect(try await ann.subscribe(["Sensor/#"], qos: .atLeastOnce) == [1])
            await ann.close()

            let bob = try await TestClient.connect(port: server.port)
            let taken = try await bob.connect(clientID: "shared-id", username: "bob", password: "b0b", cleanStart: false, sessionExpiry: 600)
            #expect(taken.reasonCode == 0)
            #expect(!taken.sessionPresent, "another user's client id starts a new session, not ann's")
            await bob.close()

            let again = try await TestClient.connect(port: server.port)
            let back = try await again.connect(clientID: "shared-id", username: "bob", password: "b0b", cleanStart: false, sessionExpiry: 600)
            #expect(back.sessionPresent, "bob resumes his own session")
            await again.close()
        }
    }
}
