import MicrolithJSON
import MicrolithRealtime
import MicrolithStore
import Testing

@Suite("EventHub: replayed writes look like live ones")
struct ReplayTests {
    @Test("a replay gives each write the kind and value it had live")
    func replayedKinds() async throws {
        try await withHub { store, hub in
            let table = store.sensor
            let position = await hub.settled()
            let live = try await hub.subscribe(.record(table, .string("s1")))
            #expect(try await live.take(2) == ["subscribed", "current s1"])
            try await store.putSensor("s1", room: "a", temp: 1)
            _ = try await store.write { txn in try txn.patch(table, id: .string("s1"), patch: ["temp": .double(2)]) }
            try await store.deleteSensor("s1")
            let resumed = try await hub.subscribe(.record(table, .string("s1")), after: position)
            var liveEvents: [RealtimeEvent] = []
            var replayed: [RealtimeEvent] = []
            for _ in 0..<3 { liveEvents.append(try await live.nextEvent(within: 5)) }
            for _ in 0..<3 { replayed.append(try await resumed.nextEvent(within: 5)) }
            #expect(liveEvents.map(\.kind) == [.put, .patch, .delete])
            #expect(replayed.map(\.kind) == liveEvents.map(\.kind))
            #expect(try replayed.map(eventJSON) == liveEvents.map(eventJSON))
        }
    }
}
