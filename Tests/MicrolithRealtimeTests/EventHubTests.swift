import MicrolithJSON
import MicrolithQuery
import MicrolithRealtime
import MicrolithStore
import NIOCore
import Testing

@Suite("EventHub: the committed change stream to subscribers")
struct EventHubTests {
    @Test("a record subscription gets subscribed, the current record, then that record's writes in commit order")
    func recordSubscription() async throws {
        try await withHub { store, hub in
            try await store.putSensor("s1", room: "a", temp: 1)
            let sub = try await hub.subscribe(.record(store.sensor, .string("s1")))
            #expect(try await sub.take(2) == ["subscribed", "current s1"])
            try await store.putSensor("s2", room: "a", temp: 2)
            try await store.putSensor("s1", room: "b", temp: 3)
            try await store.deleteSensor("s1")
            let put = try await sub.nextEvent(within: 5)
            #expect(put.kind == .put)
            #expect(try eventJSON(put)["value"] == .object(["id": .string("s1"), "room": .string("b"), "temp": .double(3)]))
            let delete = try await sub.nextEvent(within: 5)
            #expect(delete.kind == .delete)
            #expect(try eventJSON(delete)["value"] == .null)
            #expect(delete.sequence! > put.sequence!)
            sub.cancel()
            #expect(await sub.next() == nil)
        }
    }

    @Test("table and id-prefix subscriptions")
    func tableAndPrefix() async throws {
        try await withHub { store, hub in
            let all = try await hub.subscribe(.table(store.sensor))
            let room1 = try await hub.subscribe(.prefix(store.sensor, "room1/"))
            #expect(try await all.take(1) == ["subscribed"])
            #expect(try await room1.take(1) == ["subscribed"])
            try await store.putSensor("room1/a", room: "1", temp: 1)
            try await store.putSensor("room2/a", room: "2", temp: 1)
            try await store.putSensor("room1/b", room: "1", temp: 1)
            #expect(try await all.take(3) == ["put room1/a", "put room2/a", "put room1/b"])
            #expect(try await room1.take(2) == ["put room1/a", "put room1/b"])
            #expect(room1.backlog == 0)
        }
    }

    @Test("a query subscription follows records into and out of the result")
    func querySubscription() async throws {
        try await withHub { store, hub in
            try await store.putSensor("s1", room: "kitchen", temp: 1)
            let query = try QueryParser.parse("room=kitchen").bound(to: store.sensor.definition, schema: store.schema)
            let sub = try await hub.subscribe(.query(store.sensor, query))
            #expect(try await sub.take(1) == ["subscribed"])
            try await store.putSensor("s2", room: "hall", temp: 1)  // never matched: nothing
            try await store.putSensor("s2", room: "kitchen", temp: 2)  // enters
            try await store.putSensor("s1", room: "hall", temp: 3)  // leaves: a delete
            try await store.deleteSensor("s1")  // already out: nothing
            try await store.deleteSensor("s2")  // in: a delete
            #expect(try await sub.take(3) == ["put s2", "delete s1", "delete s2"])
        }
    }

    @Test("resuming replays exactly the missed changes, then live ones")
    func resume() async throws {
        try await withHub { store, hub in
            try await store.putSensor("s1", room: "a", temp: 1)
            let position = await hub.settled()
            try await store.putSensor("s1", room: "a", temp: 2)
            try await store.putSensor("s2", room: "a", temp: 2)
            try await store.putSensor("s1", room: "a", temp: 3)
            let sub = try await hub.subscribe(.record(store.sensor, .string("s1")), after: position)
            let replayed = try await sub.take(3)
            #expect(replayed == ["put s1", "put s1", "subscribed"])
            try await store.putSensor("s1", room: "a", temp: 4)
            let live = try await sub.nextEvent(within: 5)
            #expect(live.kind == .put)
            #expect(live.sequence == position + 4)
        }
    }

    @Test("a position older than the retained log gets reload, then live events")
    func reload() async throws {
        let clock = TestClock()
        try await withHub(retentionSeconds: 60, clock: clock) { store, hub in
            try await store.putSensor("s1", room: "a", temp: 1)
            try await store.putSensor("s1", room: "a", temp: 2)
            clock.advance(seconds: 120)
            try await store.putSensor("s1", room: "a", temp: 3)
            // The store's own maintenance may trim first; either way the first two entries are gone.
            try await store.trimChangeLog()
            #expect(try await store.changeLogBounds() == ChangeLogBounds(oldest: 3, latest: 3))
            let sub = try await hub.subscribe(.record(store.sensor, .string("s1")), after: 0)
            let first = try await sub.nextEvent(within: 5)
            #expect(first.kind == .reload)
            #expect(try eventJSON(first)["oldest"] == .int(3))
            #expect(try await sub.take(1) == ["subscribed"])
            // Positions the log holds still replay; one ahead of the log is a reload too.
            let fine = try await hub.subscribe(.record(store.sensor, .string("s1")), after: 2)
            #expect(try await fine.take(2) == ["put s1", "subscribed"])
            let ahead = try await hub.subscribe(.record(store.sensor, .string("s1")), after: 99)
            #expect(try await ahead.take(1) == ["reload"])
        }
    }

    @Test("a subscriber that falls behind its buffer gets overflow and ends; others get everything")
    func overflow() async throws {
        try await withHub(bufferEvents: 5) { store, hub in
            let slow = try await hub.subscribe(.table(store.sensor))
            let fast = try await hub.subscribe(.table(store.sensor), bufferEvents: 100)
            #expect(try await slow.take(1) == ["subscribed"])
            #expect(try await fast.take(1) == ["subscribed"])
            for i in 0..<20 { try await store.putSensor("s\(i)", room: "a", temp: Double(i)) }
            _ = await hub.settled()
            #expect(try await slow.take(1) == ["overflow"])
            #expect(await slow.next() == nil)
            #expect(try await fast.take(20).count == 20)
            #expect(hub.subscriptionCount == 1)
        }
    }

    @Test("messages published to a record reach its subscribers in order with writes, JSON or text")
    func messages() async throws {
        try await withHub { store, hub in
            let sub = try await hub.subscribe(.record(store.sensor, .string("s1")))
            #expect(try await sub.take(2) == ["subscribed", "current s1"])
            hub.publish(table: store.sensor, id: .string("s1"), payload: ByteBuffer(string: #"{"hello":1}"#))
            try await store.putSensor("s1", room: "a", temp: 1)
            hub.publish(table: store.sensor, id: .string("s1"), payload: ByteBuffer(string: "plain text"))
            hub.publish(table: store.sensor, id: .string("other"), payload: ByteBuffer(string: "not for s1"))
            let m1 = try await sub.nextEvent(within: 5)
            #expect(m1.kind == .message)
            #expect(m1.value == .object(["hello": .int(1)]))
            #expect(try await sub.nextEvent(within: 5).kind == .put)
            let m2 = try await sub.nextEvent(within: 5)
            #expect(m2.value == .string("plain text"))
            #expect(sub.backlog == 0)
        }
    }

    @Test("the Swift API is an AsyncSequence that ends when cancelled")
    func asyncSequence() async throws {
        try await withHub { store, hub in
            let sub = try await hub.subscribe(.table(store.sensor))
            let reader = Task {
                var kinds: [RealtimeEvent.Kind] = []
                for await event in sub { kinds.append(event.kind) }
                return kinds
            }
            try await store.putSensor("s1", room: "a", temp: 1)
            _ = await hub.settled()
            try await Task.sleep(for: .milliseconds(100))
            sub.cancel()
            #expect(await reader.value == [.subscribed, .put])
        }
    }
}
