import Foundation
import Logging
import MicrolithJSON
import MicrolithRealtime
import MicrolithSchema
import MicrolithStore
import MicrolithTables
import NIOCore
import Synchronization
import Testing

@testable import MicrolithMQTT

/// Two exported tables (one under another name, with whole-number keys) and one that is not exported.
private let bridgeSchema = """
    type Sensor @table @export {
        id: ID @primaryKey
        temp: Float
    }
    type Reading @table @export(name: "readings") {
        id: Int @primaryKey
        value: Float
    }
    type Secret @table {
        id: ID @primaryKey
        note: String
    }
    """

/// A store with `bridgeSchema`, its hub and a table bridge on them; all gone after `body`.
private func withBridge<T>(_ body: (Store, MQTTTableBridge) async throws -> T) async throws -> T {
    let directory = (NSTemporaryDirectory() as NSString).appendingPathComponent("microlith-mqtt-bridge-\(UUID().uuidString)")
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let store = try Store.open(
        schema: try SchemaParser.parse(bridgeSchema, file: "schema.graphql"),
        configuration: StoreConfiguration(directory: directory, durability: .normal))
    defer { store.close() }
    let hub = try await EventHub.start(store: store, logger: Logger(label: "test"))
    return try await body(store, MQTTTableBridge(hub: hub, access: TableAccess(store: store), logger: Logger(label: "test")))
}

extension Store {
    fileprivate func table(_ name: String) -> TableLayout { tables.first { $0.name == name }! }
}

/// What `resolution` names, as text a test can compare: `Table/key`, `plain`, or `invalid: message`.
private func describe(_ resolution: MQTTTableBridge.Resolution) -> String {
    switch resolution {
    case .plain: return "plain"
    case .record(let table, let id): return "\(table.name)/\(id)"
    case .invalidKey(let message): return "invalid: \(message)"
    }
}

@Suite("MQTTTableBridge: records as topics")
struct MQTTTableBridgeTests {
    @Test("Table/id names a record of an exported table under its export name; other topics are plain; bad keys are refused")
    func resolve() async throws {
        try await withBridge { _, bridge in
            #expect(describe(bridge.resolve("Sensor/s1")) == "Sensor/s1")
            #expect(describe(bridge.resolve("readings/42")) == "Reading/42")
            if case .record(_, let id) = bridge.resolve("readings/42") { #expect(id == .int(42)) } else { Issue.record("not a record") }
            // Plain: no key, no table, the table's own name when exported under another, a table not exported.
            for topic in ["Sensor", "Sensor/", "Reading/1", "Secret/1", "other/1", "/Sensor/1"] {
                #expect(describe(bridge.resolve(topic)) == "plain", "\(topic)")
            }
            #expect(
                describe(bridge.resolve("readings/x")) == "invalid: 'x' is not a valid Int key for readings: expected a whole number within 32 bits",
                "the same words as REST's for the same key")
            #expect(describe(bridge.resolve("readings/99999999999")).hasPrefix("invalid: "))
        }
    }

    @Test("a record's topic, and the exported table a filter's first level names with the rest of the filter")
    func topicsAndFilters() async throws {
        try await withBridge { store, bridge in
            #expect(bridge.topic(store.table("Sensor").index, .string("s1")) == "Sensor/s1")
            #expect(bridge.topic(store.table("Reading").index, .int(7)) == "readings/7")
            #expect(bridge.topic(store.table("Secret").index, .string("x")) == nil)
            let filter = bridge.table(forFilter: "readings/+")
            #expect(filter?.table.name == "Reading")
            #expect(filter?.name == "readings")
            #expect(filter?.rest == "+")
            #expect(bridge.table(forFilter: "Sensor")?.rest == "")
            #expect(bridge.table(forFilter: "Sensor/#")?.rest == "#")
            #expect(bridge.table(forFilter: "Secret/#") == nil)
            #expect(bridge.table(forFilter: "+/x") == nil)
        }
    }

    @Test("hub events become messages on the record's topic: changes retained and not kept offline, messages kept")
    func events() async throws {
        try await withBridge { store, bridge in
            let events = Mutex<[RealtimeEvent]>([])
            let key = bridge.hub.addListener { event in events.withLock { $0.append(event) } }
            defer { bridge.hub.removeListener(key) }
            let readings = store.table("Reading")
            try await store.write { txn in
                _ = try txn.put(readings, id: .int(1), body: ["value": .double(2.5)])
                _ = try txn.put(store.table("Secret"), id: .string("s"), body: ["note": .string("hidden")])
            }
            try await store.write { txn in _ = try txn.delete(readings, id: .int(1)) }
            bridge.hub.publish(table: readings, id: .int(1), payload: ByteBuffer(string: "hello"))
            _ = await bridge.hub.perform { true }
            let messages = events.withLock { $0 }.compactMap { bridge.message(for: $0) }
            #expect(messages.map(\.message.topic) == ["readings/1", "readings/1", "readings/1"])
            #expect(messages.map(\.message.retain) == [true, true, false])
            #expect(messages.map(\.keepOffline) == [false, false, true])
            #expect(messages.allSatisfy { $0.message.qos == .atLeastOnce })
            #expect(messages.map { $0.message.change?.sequence != nil } == [true, true, false])
            #expect(messages.last.map { String(buffer: $0.message.payload) } == "hello")
            let first = try #require(messages.first)
            guard case .object(let record) = try JSONParser.parse(first.message.payload.readableBytesView) else {
                Issue.record("the change's payload is not the record")
                return
            }
            #expect(record["value"] == .double(2.5))
        }
    }

    @Test("the replay: changes after a position up to another whose topics the filters match, at the granted QoS, within the limits")
    func replay() async throws {
        try await withBridge { store, bridge in
            let sensors = store.table("Sensor")
            let start = await bridge.currentPositions()
            for i in 1...4 {
                try await store.write { txn in _ = try txn.put(sensors, id: .string("s\(i)"), body: ["temp": .double(Double(i))]) }
            }
            try await store.write { txn in
                _ = try txn.delete(sensors, id: .string("s2"))
                _ = try txn.put(store.table("Secret"), id: .string("x"), body: ["note": .string("n")])
            }
            let end = await bridge.currentPositions()
            try await store.write { txn in _ = try txn.put(sensors, id: .string("s5"), body: ["temp": .double(5)]) }
            let filters = [
                "Sensor/s1": MQTTSubscription(topicFilter: "Sensor/s1", qos: .atLeastOnce),
                "Sensor/+": MQTTSubscription(topicFilter: "Sensor/+", qos: .atMostOnce),
                "Sensor/s3": MQTTSubscription(topicFilter: "Sensor/s3", qos: .atMostOnce),
            ]
            let everything = await bridge.replay(
                from: start, to: end, filters: filters, limits: MQTTSession.Limits(messages: 100, bytes: 1 << 20), clientID: "c",
                principal: .anonymous)
            #expect(everything.cut == 0)
            let all = Array(everything.messages)
            #expect(all.map(\.topic) == ["Sensor/s1", "Sensor/s2", "Sensor/s3", "Sensor/s4", "Sensor/s2"])
            #expect(all.map(\.qos) == [.atLeastOnce, .atMostOnce, .atMostOnce, .atMostOnce, .atMostOnce])
            #expect(all.map(\.payload.readableBytes).last == 0)
            #expect(all.allSatisfy { !$0.retain && $0.change?.database == "data" })
            let sequences = all.compactMap(\.change?.sequence)
            #expect(sequences == sequences.sorted())
            #expect(sequences.allSatisfy { $0 > start["data"]! && $0 <= end["data"]! })

            let onlyS3 = await bridge.replay(
                from: start, to: end, filters: ["Sensor/s3": filters["Sensor/s3"]!], limits: MQTTSession.Limits(messages: 100, bytes: 1 << 20),
                clientID: "c", principal: .anonymous)
            #expect(onlyS3.messages.map(\.topic) == ["Sensor/s3"] && onlyS3.cut == 0)

            let bounded = await bridge.replay(
                from: start, to: end, filters: filters, limits: MQTTSession.Limits(messages: 2, bytes: 1 << 20), clientID: "c", principal: .anonymous)
            // The rest that the filters match are counted as left out: s3, s4 and s2's deletion.
            #expect(bounded.messages.map(\.topic) == ["Sensor/s1", "Sensor/s2"] && bounded.cut == 3)
            let byBytes = await bridge.replay(
                from: start, to: end, filters: filters, limits: MQTTSession.Limits(messages: 100, bytes: all[0].size + all[1].size + 1),
                clientID: "c", principal: .anonymous)
            #expect(byBytes.messages.map(\.topic) == ["Sensor/s1", "Sensor/s2"] && byBytes.cut == 3)
        }
    }
}
