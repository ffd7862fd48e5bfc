import MicrolithAuth
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
    @Test func aSignedInClientWritesWithItsRolesAndAnAnonymousOneMayNot() async throws {
        try await withBroker(roles: sensorRoles, users: [("ann", "s3cret", ["writer"])]) { store, server in
            let anonymous = try await TestClient.connect(port: server.port)
            try await anonymous.handshake(clientID: "anon")
            let refused = try await anonymous.retainedPublish("Sensor/s1", #"{"temp":1}"#, id: 1)
            #expect(refused.reasonCode == 0x87, "the anonymous role may not insert sensors")
            #expect(try await store.get(store.sensor, .string("s1")) == nil)
            await anonymous.close()

            let ann = try await TestClient.connect(port: server.port)
            let ack = try await ann.connect(clientID: "ann-1", username: "ann", password: "s3cret")
            #expect(ack.reasonCode == 0)
            let stored = try await ann.retainedPublish("Sensor/s1", #"{"temp":2}"#, id: 1)
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

    @Test func aClientIDBelongsToTheUserWhoseSessionHoldsIt() async throws {
        try await withBroker(roles: sensorRoles, users: [("ann", "s3cret", ["writer"]), ("bob", "b0b", ["writer"])]) { _, server in
            let ann = try await TestClient.connect(port: server.port)
            let first = try await ann.connect(clientID: "shared-id", username: "ann", password: "s3cret", cleanStart: false, sessionExpiry: 600)
            #expect(first.reasonCode == 0 && !first.sessionPresent)
            #expect(try await ann.subscribe(["Sensor/#"], qos: .atLeastOnce) == [1])

            // Another user (or an anonymous client) may not take the id over, live or kept.
            for (name, password) in [("bob", "b0b"), (nil, nil)] as [(String?, String?)] {
                let other = try await TestClient.connect(port: server.port)
                let refused = try await other.connect(clientID: "shared-id", username: name, password: password, cleanStart: true)
                #expect(refused.reasonCode == 0x85, "client identifier not valid")
                #expect(refused.properties.reasonString == "client id shared-id belongs to another user's session")
            }
            #expect(try await ann.subscribe(["Sensor/a"], qos: .atLeastOnce, packetID: 2) == [1], "ann is still connected")
            await ann.close()

            let back = try await TestClient.connect(port: server.port)
            let resumed = try await back.connect(clientID: "shared-id", username: "ann", password: "s3cret", cleanStart: false, sessionExpiry: 600)
            #expect(resumed.sessionPresent, "ann resumes her own session")
            await back.close()
        }
    }

    @Test func aSharedSubscriptionToATableIsCheckedLikeAPlainOne() async throws {
        try await withBroker(roles: [Roles.Declaration(name: Roles.anonymous, tables: [])]) { _, server in
            let client = try await TestClient.connect(port: server.port)
            try await client.handshake(clientID: "s")
            #expect(try await client.subscribe(["$share/g/Sensor/#", "$share/g/plain/#"]) == [0x87, 0])
            await client.close()
        }
    }

    @Test func aSharedGroupGivesATablesChangesToTheMembersAllowedToSubscribe() async throws {
        try await withBroker(
            roles: Array(sensorRoles.dropFirst()) + [Roles.Declaration(name: Roles.anonymous, tables: [])], users: [("ann", "s3cret", ["writer"])]
        ) {
            store, server in
            // An anonymous member and ann share a group over every topic; only ann may see sensors.
            let anonymous = try await TestClient.connect(port: server.port)
            try await anonymous.handshake(clientID: "anon")
            #expect(try await anonymous.subscribe(["$share/g/#"]) == [0])
            let ann = try await TestClient.connect(port: server.port)
            #expect(try await ann.connect(clientID: "ann", username: "ann", password: "s3cret").reasonCode == 0)
            #expect(try await ann.subscribe(["$share/g/#"]) == [0])
            for n in 1...4 {
                try await store.write { txn in _ = try txn.put(store.sensor, id: .string("s\(n)"), body: ["temp": .double(Double(n))]) }
            }
            // Every change reaches ann, whose turn it is or not; none is dropped on the anonymous member.
            var topics: [String] = []
            for _ in 1...4 { topics.append(try publishOf(try await ann.receive()).topic) }
            #expect(topics == ["Sensor/s1", "Sensor/s2", "Sensor/s3", "Sensor/s4"])
            await anonymous.close()
            await ann.close()
        }
    }

    @Test func aClientWhoseUserChangesIsDisconnected() async throws {
        try await withBroker(roles: sensorRoles, users: [("ann", "s3cret", ["writer"]), ("bob", "b0b", ["writer"])]) { _, server in
            let authenticator = try #require(server.broker.authenticator)
            var clients: [String: TestClient] = [:]
            for (name, password) in [("ann", "s3cret"), ("bob", "b0b")] {
                let client = try await TestClient.connect(port: server.port)
                #expect(try await client.connect(clientID: name, username: name, password: password).reasonCode == 0)
                clients[name] = client
            }
            let anonymous = try await TestClient.connect(port: server.port)
            try await anonymous.handshake(clientID: "anon")
            #expect(try await authenticator.sessions.audit() == 0, "nothing changed")
            #expect(authenticator.sessions.count == 2, "the anonymous client has no user to change")

            // ann's roles change: her connection ends with 0x87; bob's and the anonymous one stay.
            try await authenticator.users.setRoles("ann", roles: [Roles.anonymous])
            #expect(try await authenticator.sessions.audit() == 1)
            let ann = try #require(clients["ann"])
            guard case .disconnect(let d) = try await ann.receive() else { throw CancellationError() }
            #expect(d.reasonCode == 0x87)
            #expect(d.properties.reasonString == "ann's roles changed; sign in again")
            #expect(try await ann.closed())
            #expect(authenticator.sessions.count == 1)

            // bob is removed: his connection ends too.
            _ = try await authenticator.users.remove("bob")
            #expect(try await authenticator.sessions.audit() == 1)
            let bob = try #require(clients["bob"])
            guard case .disconnect(let gone) = try await bob.receive() else { throw CancellationError() }
            #expect(gone.properties.reasonString == "the user bob was removed")
            #expect(try await anonymous.subscribe(["plain/#"]) == [0], "the anonymous client is still connected")
            await anonymous.close()
        }
    }

    @Test func aWildcardOverEveryTopicDoesNotCarryATablesChangesToWhoMayNotSubscribe() async throws {
        try await withBroker(roles: [Roles.Declaration(name: Roles.anonymous, tables: [])]) { store, server in
            let client = try await TestClient.connect(port: server.port)
            try await client.handshake(clientID: "w")
            #expect(try await client.subscribe(["#", "+/s1"]) == [0, 0])
            try await store.write { txn in _ = try txn.put(store.sensor, id: .string("s1"), body: ["temp": .double(5)]) }
            let publisher = try await TestClient.connect(port: server.port)
            try await publisher.handshake(clientID: "p")
            try await publisher.send(.publish(MQTTPublish(topic: "plain/x", payload: ByteBuffer(string: "hi"), qos: .atMostOnce)))
            // The plain message arrives; the table change before it never does.
            let packet = try await client.receive()
            #expect(try publishOf(packet).topic == "plain/x")
            await publisher.close()
            await client.close()
        }
    }
}
