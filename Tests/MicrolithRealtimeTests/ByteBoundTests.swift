import MicrolithJSON
import MicrolithQuery
import MicrolithRealtime
import MicrolithStore
import Testing

@Suite("EventHub: subscriber buffers bounded in bytes")
struct ByteBoundTests {
    /// About 1 KB of JSON per event.
    static let note = String(repeating: "n", count: 1000)

    @Test("a subscriber past its byte bound gets overflow and ends; one with room gets everything")
    func overflow() async throws {
        try await withHub { store, hub in
            let slow = try await hub.subscribe(.table(store.sensor), bufferBytes: 10_000)
            let roomy = try await hub.subscribe(.table(store.sensor), bufferBytes: 1 << 20)
            #expect(try await slow.take(1) == ["subscribed"])
            #expect(try await roomy.take(1) == ["subscribed"])
            for i in 0..<20 { try await store.putSensor("s\(i)", room: "a", temp: 1, note: Self.note) }
            _ = await hub.settled()
            let note = try await slow.nextEvent(within: 5)
            #expect(note.kind == .overflow)
            #expect(try eventJSON(note)["reason"] == .string("more than 10000 bytes of events were waiting for this client; it is disconnected"))
            #expect(await slow.next() == nil)
            #expect(try await roomy.take(20) == (0..<20).map { "put s\($0)" })
            _ = await hub.settled()
            #expect(hub.subscriptionCount == 1)
        }
    }

    @Test("the event bound still applies, with its own reason")
    func eventBound() async throws {
        try await withHub(bufferEvents: 3) { store, hub in
            let sub = try await hub.subscribe(.table(store.sensor))
            for i in 0..<5 { try await store.putSensor("s\(i)", room: "a", temp: 1) }
            _ = await hub.settled()
            let note = try await sub.nextEvent(within: 5)
            #expect(note.kind == .overflow)
            #expect(try eventJSON(note)["reason"] == .string("more than 3 events were waiting for this client; it is disconnected"))
        }
    }

    @Test("an event counts from its queueing until the reader asks for the one after it")
    func heldBytes() async throws {
        try await withHub { store, hub in
            let sub = try await hub.subscribe(.table(store.sensor))
            let subscribed = try await sub.nextEvent(within: 5)
            #expect(sub.bufferedBytes == subscribed.byteCount)
            for i in 0..<3 { try await store.putSensor("s\(i)", room: "a", temp: 1, note: Self.note) }
            _ = await hub.settled()
            var held = [sub.bufferedBytes]
            var sizes: [Int] = []
            for _ in 0..<3 {
                sizes.append(try await sub.nextEvent(within: 5).byteCount)
                held.append(sub.bufferedBytes)
            }
            let s = subscribed.byteCount
            // Before reading and after the first read: `subscribed`, then all three.
            #expect(held[0] == s + sizes[0] + sizes[1] + sizes[2])
            #expect(held[1] == held[0])
            // Asking for the second lets `subscribed` go; asking for the third, the first.
            #expect(held[2] == sizes[0] + sizes[1] + sizes[2])
            #expect(held[3] == sizes[1] + sizes[2])
        }
    }

    @Test("what a reader holds counts against the bound: it overflows sooner than its queue alone would")
    func inHandCounts() async throws {
        try await withHub { store, hub in
            // Room for four of these events (1,000 to 1,250 bytes each) in all: two are in the
            // reader's hands, so only two may queue, although three alone would fit.
            let sub = try await hub.subscribe(.table(store.sensor), bufferBytes: 5_000)
            #expect(try await sub.take(1) == ["subscribed"])
            for i in 0..<2 { try await store.putSensor("s\(i)", room: "a", temp: 1, note: Self.note) }
            #expect(try await sub.take(2) == ["put s0", "put s1"])
            for i in 2..<4 { try await store.putSensor("s\(i)", room: "a", temp: 1, note: Self.note) }
            _ = await hub.settled()
            #expect(sub.backlog == 2)
            try await store.putSensor("s4", room: "a", temp: 1, note: Self.note)
            _ = await hub.settled()
            #expect(try await sub.take(1) == ["overflow"])
        }
    }

    @Test("a resume whose missed changes take more than half the byte buffer gets reload; a roomier one replays them")
    func replayBound() async throws {
        try await withHub { store, hub in
            let query = try QueryParser.parse("room=kitchen").bound(to: store.sensor.definition, schema: store.schema)
            let position = await hub.settled()
            for i in 0..<6 { try await store.putSensor("k\(i)", room: "kitchen", temp: 1, note: Self.note) }
            let small = try await hub.subscribe(.query(store.sensor, query), after: position, bufferBytes: 8_000)
            let reload = try await small.nextEvent(within: 5)
            #expect(reload.kind == .reload)
            #expect(try eventJSON(reload)["position"] == .int(position))
            #expect(
                try eventJSON(reload)["reason"]
                    == .string("the changes after position \(position) take more than 4000 bytes, half this client's buffer; re-read the data"))
            #expect(try await small.take(1) == ["subscribed"])
            try await store.putSensor("k0", room: "hall", temp: 1)
            #expect(try await small.take(1) == ["delete k0"])
            let roomy = try await hub.subscribe(.query(store.sensor, query), after: position, bufferBytes: 1 << 20)
            #expect(try await roomy.take(8) == (0..<6).map { "put k\($0)" } + ["delete k0", "subscribed"])
        }
    }

    @Test("ended() returns once the subscription ends, or when the waiting task is cancelled", .timeLimit(.minutes(1)))
    func ended() async throws {
        try await withHub(bufferEvents: 1) { store, hub in
            let sub = try await hub.subscribe(.table(store.sensor))
            let cancelled = Task { await sub.ended() }
            cancelled.cancel()
            await cancelled.value
            _ = await hub.settled()
            #expect(hub.subscriptionCount == 1)
            let waiting = Task { await sub.ended() }
            for i in 0..<3 { try await store.putSensor("s\(i)", room: "a", temp: 1) }
            await waiting.value
            // The overflow note replaces whatever waited, `subscribed` included.
            #expect(try await sub.take(1) == ["overflow"])
            await sub.ended()
        }
    }
}
