import Foundation
import Logging
import MicrolithJSON
import MicrolithRealtime
import MicrolithSchema
import MicrolithStore
import NIOCore
import NIOEmbedded
import NIOWebSocket
import Synchronization
import Testing

@testable import MicrolithHTTP

/// The writer that takes a subscription's events to its connection on the connection's loop,
/// on a test channel: what it writes, when it holds back, and how it ends.
@Suite(.timeLimit(.minutes(1))) struct RealtimeFrameWriterTests {
    typealias Writer = RealtimeFrameWriter<ByteBuffer>

    /// A store with a hub whose subscriptions hold at most `bufferEvents`, and a test channel.
    func withChannel(bufferEvents: Int = 1000, _ body: (Store, EventHub, NIOAsyncTestingChannel) async throws -> Void) async throws {
        let directory = (NSTemporaryDirectory() as NSString).appendingPathComponent("microlith-frame-writer-tests-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let schema = try SchemaParser.parse(httpSchemaText, file: "schema.graphql")
        let store = try Store.open(schema: schema, configuration: StoreConfiguration(directory: directory, durability: .normal))
        defer { store.close() }
        let hub = try await EventHub.start(store: store, bufferEvents: bufferEvents, logger: Logger(label: "test"))
        let channel = NIOAsyncTestingChannel()
        try await body(store, hub, channel)
        await hub.stop()
        _ = try? await channel.finish()
    }

    func put(_ store: Store, _ id: String, notes: Int = 0) async throws {
        let table = try #require(store.tables.first { $0.name == "Todo" })
        let body: JSONObject = ["title": .string(id), "notes": .string(String(repeating: "n", count: notes))]
        try await store.write { txn in _ = try txn.put(table, id: .string(id), body: body) }
    }

    /// Counts the flushes that pass, and the bytes written before each.
    final class FlushCounter: ChannelOutboundHandler, Sendable {
        typealias OutboundIn = ByteBuffer
        let flushed = Mutex<[Int]>([])
        let pending = Mutex(0)

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            pending.withLock { $0 += unwrapOutboundIn(data).readableBytes }
            context.write(data, promise: promise)
        }

        func flush(context: ChannelHandlerContext) {
            let bytes = pending.withLock { p in
                defer { p = 0 }
                return p
            }
            flushed.withLock { $0.append(bytes) }
            context.flush()
        }
    }

    /// The writer, run in a task of its own; each event is written as its JSON.
    func start(_ subscription: RealtimeSubscription, on channel: NIOAsyncTestingChannel) -> Task<Writer.Ending, any Error> {
        Task { try await Writer.run(subscription, on: channel, shape: nil) { $0.kind == .keepAlive ? nil : $0.json } }
    }

    /// The `type` and `id` of the next frame written.
    func nextFrame(_ channel: NIOAsyncTestingChannel) async throws -> String {
        let frame = try await channel.waitForOutboundWrite(as: ByteBuffer.self)
        guard case .object(let o) = try JSONParser.parse(frame.readableBytesView), case .string(let type)? = o["type"] else { return "?" }
        if case .string(let id)? = o["id"] { return "\(type) \(id)" }
        return type
    }

    /// Whether the writer is still in the channel's pipeline.
    func isInstalled(_ channel: NIOAsyncTestingChannel) async -> Bool {
        (try? await channel.pipeline.containsHandler(type: Writer.self).get()) != nil
    }

    @Test func eventsAreWrittenWhileTheChannelIsWritableAndResumeWhenItIsAgain() async throws {
        try await withChannel { store, hub, channel in
            let todo = try #require(store.tables.first { $0.name == "Todo" })
            let subscription = try await hub.subscribe(.table(todo))
            let run = start(subscription, on: channel)
            #expect(try await nextFrame(channel) == "subscribed")
            try await put(store, "a")
            #expect(try await nextFrame(channel) == "put a")
            // A connection whose buffer is full takes nothing: the events wait in the subscription.
            channel.isWritable = false
            try await put(store, "b")
            try await put(store, "c")
            _ = await hub.settled()
            try await channel.eventLoop.submit {}.get()
            #expect(try await channel.readOutbound(as: ByteBuffer.self) == nil)
            #expect(subscription.backlog == 2)
            channel.isWritable = true
            channel.pipeline.fireChannelWritabilityChanged()
            #expect(try await nextFrame(channel) == "put b")
            #expect(try await nextFrame(channel) == "put c")
            // Keep-alives are not frames here; the end of the subscription ends the writer, which leaves the pipeline.
            subscription.keepAlive()
            subscription.cancel()
            #expect(try await run.value == .ended)
            #expect(try await channel.readOutbound(as: ByteBuffer.self) == nil)
            #expect(!(await isInstalled(channel)))
        }
    }

    @Test func aSubscriberPastItsBufferGetsTheOverflowNoteLast() async throws {
        try await withChannel(bufferEvents: 2) { store, hub, channel in
            let todo = try #require(store.tables.first { $0.name == "Todo" })
            let subscription = try await hub.subscribe(.table(todo))
            let run = start(subscription, on: channel)
            #expect(try await nextFrame(channel) == "subscribed")
            channel.isWritable = false
            for id in ["a", "b", "c", "d"] { try await put(store, id) }
            _ = await hub.settled()
            channel.isWritable = true
            channel.pipeline.fireChannelWritabilityChanged()
            #expect(try await nextFrame(channel) == "overflow")
            #expect(try await run.value == .overflowed)
            #expect(try await channel.readOutbound(as: ByteBuffer.self) == nil)
            #expect(!(await isInstalled(channel)))
        }
    }

    @Test func aClosedConnectionOrACancelledTaskStopsTheWriter() async throws {
        try await withChannel { store, hub, channel in
            let todo = try #require(store.tables.first { $0.name == "Todo" })
            let closing = try await hub.subscribe(.table(todo))
            let first = start(closing, on: channel)
            #expect(try await nextFrame(channel) == "subscribed")
            try await channel.close()
            #expect(try await first.value == .closed)
        }
        try await withChannel { store, hub, channel in
            let todo = try #require(store.tables.first { $0.name == "Todo" })
            let cancelled = try await hub.subscribe(.table(todo))
            let second = start(cancelled, on: channel)
            #expect(try await nextFrame(channel) == "subscribed")
            second.cancel()
            #expect(try await second.value == .closed)
            #expect(!(await isInstalled(channel)))
            // Later events are not written.
            try await put(store, "late")
            _ = await hub.settled()
            try await channel.eventLoop.submit {}.get()
            #expect(try await channel.readOutbound(as: ByteBuffer.self) == nil)
        }
    }

    @Test func aLongBacklogIsFlushedEvery32KiBSoThatTheChannelCountsIt() async throws {
        try await withChannel { store, hub, channel in
            let counter = FlushCounter()
            try await channel.pipeline.addHandler(counter, position: .first)
            let todo = try #require(store.tables.first { $0.name == "Todo" })
            let subscription = try await hub.subscribe(.table(todo))
            let run = start(subscription, on: channel)
            #expect(try await nextFrame(channel) == "subscribed")
            // Ten 10 KB events wait while the channel takes nothing, then go in one drain.
            channel.isWritable = false
            for i in 0..<10 { try await put(store, "r\(i)", notes: 10_000) }
            _ = await hub.settled()
            counter.flushed.withLock { $0 = [] }
            channel.isWritable = true
            channel.pipeline.fireChannelWritabilityChanged()
            for i in 0..<10 { #expect(try await nextFrame(channel) == "put r\(i)") }
            let flushes = counter.flushed.withLock { $0 }
            #expect(flushes.count >= 3, "\(flushes)")
            #expect(flushes.allSatisfy { $0 <= Writer.flushBytes + 11_000 }, "\(flushes)")
            subscription.cancel()
            #expect(try await run.value == .ended)
        }
    }

    @Test func aClosedOutputOrTheClientsCloseFrameStopsTheWriter() async throws {
        try await withChannel { store, hub, channel in
            let todo = try #require(store.tables.first { $0.name == "Todo" })
            let subscription = try await hub.subscribe(.table(todo))
            let run = start(subscription, on: channel)
            #expect(try await nextFrame(channel) == "subscribed")
            channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.outputClosed)
            #expect(try await run.value == .closed)
            #expect(!(await isInstalled(channel)))
        }
        try await withChannel { store, hub, channel in
            let todo = try #require(store.tables.first { $0.name == "Todo" })
            let subscription = try await hub.subscribe(.table(todo))
            let run = start(subscription, on: channel)
            #expect(try await nextFrame(channel) == "subscribed")
            try await channel.writeInbound(WebSocketFrame(fin: true, opcode: .connectionClose, data: ByteBuffer()))
            #expect(try await run.value == .closed)
            // The frame still reaches the handlers after it.
            #expect(try await channel.readInbound(as: WebSocketFrame.self)?.opcode == .connectionClose)
            try await put(store, "late")
            _ = await hub.settled()
            try await channel.eventLoop.submit {}.get()
            #expect(try await channel.readOutbound(as: ByteBuffer.self) == nil)
        }
    }

    @Test func aWebSocketFrameEncodedOnceIsWrittenBelowTheFrameEncoder() async throws {
        try await withChannel { store, hub, channel in
            try await channel.eventLoop.submit { try channel.pipeline.syncOperations.addHandler(WebSocketFrameEncoder()) }.get()
            let todo = try #require(store.tables.first { $0.name == "Todo" })
            let subscription = try await hub.subscribe(.table(todo))
            let run = Task {
                try await Writer.run(subscription, on: channel, placement: .belowWebSocketEncoder, shape: nil) { $0.webSocketFrame }
            }
            // The bytes on the wire are the event's one frame, untouched by the encoder.
            var subscribed = try await channel.waitForOutboundWrite(as: ByteBuffer.self)
            #expect(subscribed.readInteger(as: UInt8.self) == 0x81)
            _ = subscribed.readInteger(as: UInt8.self)
            #expect(String(buffer: subscribed).hasPrefix("{\"type\":\"subscribed\""))
            try await put(store, "a")
            var put = try await channel.waitForOutboundWrite(as: ByteBuffer.self)
            #expect(put.readInteger(as: UInt8.self) == 0x81)
            var length = Int(put.readInteger(as: UInt8.self) ?? 0)
            if length == 126 { length = Int(put.readInteger(as: UInt16.self) ?? 0) }
            #expect(length == put.readableBytes)
            #expect(String(buffer: put).hasPrefix("{\"type\":\"put\",\"table\":\"Todo\",\"id\":\"a\""))
            subscription.cancel()
            #expect(try await run.value == .ended)
        }
        // Without an encoder to write below, nothing is written: the writer stops at once.
        try await withChannel { store, hub, channel in
            let todo = try #require(store.tables.first { $0.name == "Todo" })
            let subscription = try await hub.subscribe(.table(todo))
            let ending = try await Writer.run(subscription, on: channel, placement: .belowWebSocketEncoder, shape: nil) { $0.webSocketFrame }
            #expect(ending == .closed)
            #expect(try await channel.readOutbound(as: ByteBuffer.self) == nil)
        }
    }
}
