import Foundation
import Logging
import MicrolithJSON
import MicrolithRealtime
import MicrolithSchema
import MicrolithStore
import NIOCore
import Synchronization
import Testing

let sensorSchema = """
    type Sensor @table @export {
        id: ID @primaryKey
        room: String @indexed
        temp: Float
    }
    """

/// A store in a new temporary folder with the hub following it; `body` gets both, and the folder goes afterwards.
func withHub<T>(
    retentionSeconds: Int = 86_400, bufferEvents: Int = 1000, bufferBytes: Int = EventHub.defaultBufferBytes, clock: TestClock = TestClock(),
    _ body: (Store, EventHub) async throws -> T
) async throws -> T {
    let directory = (NSTemporaryDirectory() as NSString).appendingPathComponent("microlith-realtime-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let store = try Store.open(
        schema: try SchemaParser.parse(sensorSchema, file: "schema.graphql"),
        configuration: StoreConfiguration(
            directory: directory, durability: .normal, changeLogRetentionSeconds: retentionSeconds, wallClock: { clock.now }))
    defer { store.close() }
    let hub = try await EventHub.start(store: store, bufferEvents: bufferEvents, bufferBytes: bufferBytes, logger: Logger(label: "test"))
    return try await body(store, hub)
}

/// A wall clock the test moves by hand (milliseconds since 1970), starting at the real time.
final class TestClock: Sendable {
    private let milliseconds = Mutex(Int64(Date().timeIntervalSince1970 * 1000))
    var now: Int64 { milliseconds.withLock { $0 } }
    func advance(seconds: Int64) { milliseconds.withLock { $0 += seconds * 1000 } }
}

extension Store {
    var sensor: TableLayout { tables.first { $0.name == "Sensor" }! }

    /// Puts a sensor; `note`, when given, is an undeclared attribute that makes the record bigger.
    func putSensor(_ id: String, room: String, temp: Double, note: String? = nil) async throws {
        let table = sensor
        var body: JSONObject = ["room": .string(room), "temp": .double(temp)]
        if let note { body["note"] = .string(note) }
        try await write { [body] txn in _ = try txn.put(table, id: .string(id), body: body) }
    }

    func deleteSensor(_ id: String) async throws {
        let table = sensor
        try await write { txn in _ = try txn.delete(table, id: .string(id)) }
    }
}

extension RealtimeSubscription {
    /// The next event, failing the test after `seconds`.
    func nextEvent(within seconds: Double, sourceLocation: Testing.SourceLocation = #_sourceLocation) async throws -> RealtimeEvent {
        let event = try await withThrowingTaskGroup(of: RealtimeEvent?.self) { group in
            group.addTask { await self.next() }
            group.addTask {
                try await Task.sleep(for: .seconds(seconds))
                return nil
            }
            let first = await (try group.next()) ?? nil
            group.cancelAll()
            return first
        }
        return try #require(event, "no event within \(seconds) s", sourceLocation: sourceLocation)
    }

    /// The kinds and ids of the next `count` events.
    func take(_ count: Int) async throws -> [String] {
        var out: [String] = []
        for _ in 0..<count {
            let e = try await nextEvent(within: 5)
            out.append(e.id.map { "\(e.kind.rawValue) \($0)" } ?? e.kind.rawValue)
        }
        return out
    }
}

func eventJSON(_ event: RealtimeEvent) throws -> JSONObject {
    guard case .object(let o) = try JSONParser.parse(event.json.readableBytesView) else {
        Issue.record("event JSON is not an object")
        return [:]
    }
    return o
}
