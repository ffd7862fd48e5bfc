import MicrolithJSON
import MicrolithRealtime
import MicrolithStore
import NIOCore
import NIOEmbedded
import Synchronization
import Testing

/// A reader on an event loop: each wake polls until the subscription is empty (or ended), unless
/// it is paused, as a connection whose buffer is full is.
final class TestSink: RealtimeEventSink {
    let eventLoop: any EventLoop
    let subscription: RealtimeSubscription
    private let state = Mutex<(wakes: Int, events: [String], ended: Bool, paused: Bool)>((0, [], false, false))

    init(_ subscription: RealtimeSubscription, on loop: any EventLoop) {
        self.eventLoop = loop
        self.subscription = subscription
    }

    var wakes: Int { state.withLock { $0.wakes } }
    var events: [String] { state.withLock { $0.events } }
    var ended: Bool { state.withLock { $0.ended } }

    func pause(_ paused: Bool) { state.withLock { $0.paused = paused } }

    func eventsReady() {
        eventLoop.preconditionInEventLoop()
        guard
            !state.withLock({ s in
                s.wakes += 1
                return s.paused
            })
        else { return }
        drain()
    }

    /// Polls what waits, as a writer with room does.
    func drain() {
        while true {
            switch subscription.poll() {
            case .event(let e): state.withLock { $0.events.append(e.id.map { "\(e.kind.rawValue) \($0)" } ?? e.kind.rawValue) }
            case .empty: return
            case .ended:
                state.withLock { $0.ended = true }
                return
            }
        }
    }

    /// Attaches the sink and takes what already waits, on its loop.
    func attach() async throws {
        try await eventLoop.submit { [self] in
            subscription.attach(self)
            drain()
        }.get()
    }
}

/// Waits until everything the hub has delivered and every wake it sent to `loop` has run.
func settle(_ hub: EventHub, _ loop: any EventLoop) async throws {
    _ = await hub.settled()
    try await loop.submit {}.get()
}

@Suite("EventHub: subscriptions read on an event loop")
struct EventSinkTests {
    @Test("a commit of several changes wakes each sink once, whatever the number of sinks, with every event in order")
    func oneWakePerCommit() async throws {
        let loop = NIOAsyncTestingEventLoop()
        try await withHub { store, hub in
            var sinks: [TestSink] = []
            for _ in 0..<50 {
                let sink = TestSink(try await hub.subscribe(.table(store.sensor)), on: loop)
                try await sink.attach()
                sinks.append(sink)
            }
            let table = store.sensor
            try await store.write { txn in
                for i in 0..<5 { _ = try txn.put(table, id: .string("s\(i)"), body: ["room": .string("a"), "temp": .double(1)]) }
            }
            try await settle(hub, loop)
            for sink in sinks {
                #expect(sink.wakes == 1)
                #expect(sink.events == ["subscribed"] + (0..<5).map { "put s\($0)" })
            }
            // The next commit wakes each again, once.
            try await store.putSensor("s9", room: "a", temp: 2)
            try await settle(hub, loop)
            #expect(sinks.allSatisfy { $0.wakes == 2 && $0.events.last == "put s9" })
        }
        await loop.shutdownGracefully()
    }

    @Test("a sink that stops polling is not woken again; past its buffer it polls the overflow note, then the end")
    func pausedSinkOverflows() async throws {
        let loop = NIOAsyncTestingEventLoop()
        try await withHub(bufferEvents: 3) { store, hub in
            let sink = TestSink(try await hub.subscribe(.table(store.sensor)), on: loop)
            try await sink.attach()
            sink.pause(true)
            try await store.putSensor("s0", room: "a", temp: 1)
            try await settle(hub, loop)
            #expect(sink.wakes == 1)
            for i in 1..<5 { try await store.putSensor("s\(i)", room: "a", temp: 1) }
            try await settle(hub, loop)
            // Not woken while it has not polled the subscription empty again.
            #expect(sink.wakes == 1)
            #expect(sink.subscription.backlog == 1)
            try await loop.submit { sink.drain() }.get()
            #expect(sink.events == ["subscribed", "overflow"])
            #expect(sink.ended)
            _ = await hub.settled()
            #expect(hub.subscriptionCount == 0)
        }
        await loop.shutdownGracefully()
    }

    @Test("cancelling wakes an idle sink, which polls the end; a keep-alive wakes it too")
    func cancelAndKeepAliveWake() async throws {
        let loop = NIOAsyncTestingEventLoop()
        try await withHub { store, hub in
            let sink = TestSink(try await hub.subscribe(.table(store.sensor)), on: loop)
            try await sink.attach()
            sink.subscription.keepAlive()
            try await settle(hub, loop)
            #expect(sink.events == ["subscribed", "keepAlive"])
            #expect(!sink.ended)
            sink.subscription.cancel()
            try await settle(hub, loop)
            #expect(sink.wakes == 2)
            #expect(sink.ended)
        }
        await loop.shutdownGracefully()
    }

    @Test("an event's JSON is the data line of its Server-Sent Events frame, in the same bytes")
    func sseFrameHoldsTheJSON() async throws {
        try await withHub { store, hub in
            let sub = try await hub.subscribe(.table(store.sensor))
            #expect(try await sub.take(1) == ["subscribed"])
            try await store.putSensor("s1", room: "a", temp: 1)
            let event = try await sub.nextEvent(within: 5)
            let seq = try #require(event.sequence)
            let json = String(buffer: event.json)
            #expect(json.hasPrefix("{\"type\":\"put\",\"table\":\"Sensor\",\"id\":\"s1\""))
            #expect(String(buffer: event.sseFrame) == "id: \(seq)\nevent: put\ndata: \(json)\n\n")
            let shared = event.sseFrame.withUnsafeReadableBytes { frame in
                event.json.withUnsafeReadableBytes { json in
                    json.baseAddress! >= frame.baseAddress! && json.baseAddress! + json.count <= frame.baseAddress! + frame.count
                }
            }
            #expect(shared)
            sub.keepAlive()
            let keepAlive = try await sub.nextEvent(within: 5)
            #expect(String(buffer: keepAlive.sseFrame) == ": keep-alive\n\n")
        }
    }

    @Test("an event's WebSocket frame is its JSON behind an unmasked text-frame header, encoded once", arguments: [10, 200, 70_000])
    func webSocketFrameCarriesTheJSON(noteBytes: Int) async throws {
        try await withHub { store, hub in
            let sub = try await hub.subscribe(.table(store.sensor))
            #expect(try await sub.take(1) == ["subscribed"])
            try await store.putSensor("s1", room: "a", temp: 1, note: String(repeating: "n", count: noteBytes))
            let event = try await sub.nextEvent(within: 5)
            let length = event.json.readableBytes
            var frame = event.webSocketFrame
            #expect(frame.readInteger(as: UInt8.self) == 0x81)
            let marker = frame.readInteger(as: UInt8.self) ?? 0
            switch length {
            case ..<126: #expect(Int(marker) == length)
            case ...65_535:
                #expect(marker == 126)
                #expect(frame.readInteger(as: UInt16.self).map(Int.init) == length)
            default:
                #expect(marker == 127)
                #expect(frame.readInteger(as: UInt64.self).map(Int.init) == length)
            }
            #expect(frame == event.json)
            // The same bytes for every subscriber: one storage.
            let again = event.webSocketFrame
            let same = event.webSocketFrame.withUnsafeReadableBytes { a in again.withUnsafeReadableBytes { b in a.baseAddress == b.baseAddress } }
            #expect(same)
        }
    }
}
