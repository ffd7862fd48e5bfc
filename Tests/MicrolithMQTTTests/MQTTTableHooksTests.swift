import MicrolithJSON
import MicrolithMQTT
import MicrolithStore
import MicrolithTables
import NIOCore
import Synchronization
import Testing

/// A hook's refusal with the HTTP status it stands for, as an application's `OperationError` is.
private struct Refusal: StatusCodedError {
    var status: Int
    var message: String
}

/// What the hooks saw of each request, shared with them.
private final class Seen: Sendable {
    private let lines = Mutex<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }
}

/// Sensor hooks: a write stores `room` upper-cased; a temperature below -50 is refused (400), a room
/// named "vault" is not the client's to write (403); the sensor "pinned" may not be deleted.
private func sensorHooks(_ seen: Seen) -> TableHooks {
    var hooks = TableHooks(table: "Sensor", module: "test")
    hooks.put = { body, _, _, request in
        seen.append("\(request.method) \(request.path) via \(request.transport) from \(request.headers["mqtt-client-id"] ?? "-")")
        let temp: Double? =
            switch body["temp"] {
            case .double(let t)?: t
            case .int(let t)?: Double(t)
            default: nil
            }
        if let temp, temp < -50 { throw Refusal(status: 400, message: "temp below -50 is a broken sensor") }
        if body["room"] == "vault" { throw Refusal(status: 403, message: "the vault is not yours") }
        var shaped = body
        if case .string(let room)? = body["room"] { shaped["room"] = .string(room.uppercased()) }
        return shaped
    }
    hooks.delete = { record, _, request in
        seen.append("\(request.method) \(request.path) via \(request.transport)")
        if record["id"] == "pinned" { throw Refusal(status: 409, message: "pinned sensors stay") }
    }
    return hooks
}

@Suite("MQTT: a retained publish to a record goes through the table's hooks, as a PUT or DELETE does")
struct MQTTTableHooksTests {
    @Test func thePutHookShapesAndRefusesRetainedPublishes() async throws {
        let seen = Seen()
        try await withBroker(hooks: [sensorHooks(seen)]) { store, server in
            let client = try await TestClient.connect(port: server.port)
            try await client.handshake(clientID: "writer")

            let stored = try await client.retainedPublish("Sensor/s1", #"{"room":"kitchen","temp":20}"#, id: 1)
            #expect(stored.reasonCode == 0)
            #expect(try await store.get(store.sensor, .string("s1"))?.record["room"] == "KITCHEN", "the hook shaped what was stored")
            #expect(seen.all.first == "PUT /Sensor/s1 via mqtt from writer")

            let broken = try await client.retainedPublish("Sensor/s2", #"{"room":"x","temp":-80}"#, id: 2)
            #expect(broken.reasonCode == 0x83, "a refusal (4xx) is implementation specific error")
            #expect(broken.properties.reasonString == "temp below -50 is a broken sensor")
            let vault = try await client.retainedPublish("Sensor/s3", #"{"room":"vault","temp":1}"#, id: 3)
            #expect(vault.reasonCode == 0x87, "403 is not authorized")
            #expect(try await store.get(store.sensor, .string("s2")) == nil)
            #expect(try await store.get(store.sensor, .string("s3")) == nil)
            await client.close()
        }
    }

    @Test func theDeleteHookRunsForAnEmptyRetainedPublish() async throws {
        let seen = Seen()
        try await withBroker(hooks: [sensorHooks(seen)]) { store, server in
            try await store.write { txn in
                _ = try txn.put(store.sensor, id: .string("pinned"), body: ["temp": 1])
                _ = try txn.put(store.sensor, id: .string("loose"), body: ["temp": 2])
            }
            let client = try await TestClient.connect(port: server.port)
            try await client.handshake(clientID: "deleter")
            let refused = try await client.retainedPublish("Sensor/pinned", "", id: 1)
            #expect(refused.reasonCode == 0x83)
            #expect(refused.properties.reasonString == "pinned sensors stay")
            #expect(try await store.get(store.sensor, .string("pinned")) != nil)
            let gone = try await client.retainedPublish("Sensor/loose", "", id: 2)
            #expect(gone.reasonCode == 0)
            #expect(try await store.get(store.sensor, .string("loose")) == nil)
            #expect(seen.all == ["DELETE /Sensor/pinned via mqtt", "DELETE /Sensor/loose via mqtt"])
            await client.close()
        }
    }

    @Test func subscribersGetRecordsAsTheGetHookShowsThem() async throws {
        var hooks = TableHooks(table: "Sensor", module: "test")
        hooks.get = { record, request in
            if record["id"] == "secret" { throw Refusal(status: 403, message: "not yours") }
            var shown = record
            shown["via"] = .string(request.transport)
            shown["for"] = .string(request.headers["mqtt-client-id"] ?? "every subscriber")
            return shown
        }
        try await withBroker(hooks: [hooks]) { store, server in
            try await store.write { txn in
                _ = try txn.put(store.sensor, id: .string("a"), body: ["temp": 1])
                _ = try txn.put(store.sensor, id: .string("secret"), body: ["temp": 2])
            }
            let client = try await TestClient.connect(port: server.port)
            try await client.handshake(clientID: "reader")
            try await client.send(
                .subscribe(MQTTSubscribe(packetID: 1, subscriptions: [MQTTSubscription(topicFilter: "Sensor/+", qos: .atMostOnce)])))
            guard case .suback = try await client.receive() else { throw CancellationError() }
            let retained = try publishOf(try await client.receive())
            #expect(retained.topic == "Sensor/a", "the record the hook refuses is not sent")
            #expect(try JSONParser.parse(retained.payload.readableBytesView).objectValue?["via"] == "mqtt")
            #expect(try JSONParser.parse(retained.payload.readableBytesView).objectValue?["for"] == "reader", "a read for one client names it")

            try await store.write { txn in _ = try txn.put(store.sensor, id: .string("secret"), body: ["temp": 3]) }
            try await store.write { txn in _ = try txn.put(store.sensor, id: .string("b"), body: ["temp": 4]) }
            let change = try publishOf(try await client.receive())
            #expect(change.topic == "Sensor/b", "neither the retained record nor the change the hook refuses is sent")
            let live = try JSONParser.parse(change.payload.readableBytesView).objectValue
            #expect(live?["via"] == "mqtt")
            #expect(live?["for"] == "every subscriber", "a live change is shaped once for all its subscribers")
            await client.close()
        }
    }

    @Test func theSearchHookMayRefuseAWildcardOverATable() async throws {
        let seen = Seen()
        var hooks = TableHooks(table: "Sensor", module: "test")
        hooks.search = { request in
            seen.append("\(request.path) \(request.headers["mqtt-topic-filter"] ?? "-") from \(request.headers["mqtt-client-id"] ?? "-")")
            if request.headers["mqtt-client-id"] == "nosy" { throw Refusal(status: 403, message: "no listing") }
        }
        try await withBroker(hooks: [hooks]) { store, server in
            try await store.write { txn in _ = try txn.put(store.sensor, id: .string("a"), body: ["temp": 1]) }
            for version in [MQTTProtocolVersion.v5, .v3_1_1] {
                let client = try await TestClient.connect(port: server.port, version: version)
                try await client.handshake(clientID: "nosy")
                let filters = ["Sensor/#", "Sensor/+", "Sensor/a", "plain/#"]
                try await client.send(
                    .subscribe(MQTTSubscribe(packetID: 1, subscriptions: filters.map { MQTTSubscription(topicFilter: $0, qos: .atMostOnce) })))
                guard case .suback(let suback) = try await client.receive() else { throw CancellationError() }
                let refused: UInt8 = version == .v5 ? 0x87 : 0x80
                #expect(suback.reasonCodes == [refused, refused, 0, 0], "only wildcards over the table are standing queries")
                // The exact topic's record still comes; nothing under the refused wildcards does.
                let retained = try publishOf(try await client.receive())
                #expect(retained.topic == "Sensor/a")
                await client.close()
            }
            #expect(seen.all.contains("/Sensor/ Sensor/# from nosy"), "\(seen.all)")
            let allowed = try await TestClient.connect(port: server.port)
            try await allowed.handshake(clientID: "fine")
            try await allowed.send(
                .subscribe(MQTTSubscribe(packetID: 1, subscriptions: [MQTTSubscription(topicFilter: "Sensor/#", qos: .atMostOnce)])))
            guard case .suback(let granted) = try await allowed.receive() else { throw CancellationError() }
            #expect(granted.reasonCodes == [0])
            await allowed.close()
        }
    }

    @Test func rolesDecideWhatAClientMaySubscribeToAndPublish() async throws {
        let roles = [Roles.Declaration(name: Roles.anonymous, tables: [("Sensor", [.read, .insert])])]
        try await withBroker(roles: roles) { store, server in
            let client = try await TestClient.connect(port: server.port)
            try await client.handshake(clientID: "limited")
            try await client.send(
                .subscribe(
                    MQTTSubscribe(
                        packetID: 1,
                        subscriptions: ["Sensor/#", "Sensor/a", "plain/#"].map { MQTTSubscription(topicFilter: $0, qos: .atMostOnce) })))
            guard case .suback(let suback) = try await client.receive() else { throw CancellationError() }
            #expect(suback.reasonCodes == [0x87, 0x87, 0], "a table's topics need the subscribe permission; plain topics do not")

            #expect(try await client.retainedPublish("Sensor/new", #"{"temp":1}"#, id: 2).reasonCode == 0, "insert is granted")
            let update = try await client.retainedPublish("Sensor/new", #"{"temp":2}"#, id: 3)
            #expect(update.reasonCode == 0x87)
            #expect(update.properties.reasonString == "the anonymous role may not update Sensor records")
            #expect(try await client.retainedPublish("Sensor/new", "", id: 4).reasonCode == 0x87, "delete is not granted")
            #expect(try await store.get(store.sensor, .string("new"))?.record["temp"] == 1)
            try await client.send(.publish(MQTTPublish(topic: "Sensor/new", payload: ByteBuffer(string: "hi"), qos: .atLeastOnce, packetID: 5)))
            guard case .ack(let message) = try await client.receive() else { throw CancellationError() }
            #expect(message.reasonCode == 0x87, "a message to a record's subscribers needs the publish permission")
            await client.close()
        }
    }

    @Test func anInvalidKeyGetsTheWordsRESTUses() async throws {
        try await withBroker { _, server in
            let client = try await TestClient.connect(port: server.port)
            try await client.handshake(clientID: "keys")
            let ack = try await client.retainedPublish("Sensor/a\u{7}b", #"{"temp":1}"#, id: 1)
            #expect(ack.reasonCode == 0x90)
            #expect(
                ack.properties.reasonString
                    == "'a\u{7}b' is not a valid ID key for Sensor: a key must not contain control characters; U+0007 at character 1")
            await client.close()
        }
    }
}
