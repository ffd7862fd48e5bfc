import MicrolithRealtime
import NIOCore
import NIOWebSocket

/// Writes a subscription's events to its connection on the connection's event loop: the hub wakes
/// every writer of a loop in one task per commit, and each writes the event's bytes as encoded
/// once for every subscriber (``RealtimeEvent/webSocketFrame`` below the WebSocket frame encoder,
/// ``RealtimeEvent/sseFrame`` in an event stream). No Swift task wakes per subscriber per event.
///
/// It sits last in the connection's pipeline, behind the server's own handlers (so what it writes
/// is encoded as any response or frame is), for as long as the subscription is served, then takes
/// itself out. It writes while the channel is writable (below NIO's write-buffer high-water mark,
/// 64 KiB unsent; once past it, until the channel is under the low-water mark, 32 KiB, again),
/// flushing every ``flushBytes`` so that a handler holding writes until a flush (TLS) cannot hide
/// them from that mark; meanwhile events wait in the subscription's buffer, whose bound drops a
/// subscriber that falls too far behind (an `overflow` event, the last thing written). It stops
/// writing once the connection's output is closed or, on a WebSocket, once the client's close
/// frame arrives: nothing follows the close handshake.
final class RealtimeFrameWriter<Frame: Sendable>: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = Any
    typealias OutboundOut = Frame

    /// Why the writer stopped.
    enum Ending: Sendable, Equatable {
        /// The subscription ended (cancelled) and everything it queued was written.
        case ended
        /// The subscriber fell behind: the `overflow` event was the last thing written.
        case overflowed
        /// The connection closed, or the writer was stopped, first.
        case closed
    }

    /// Where the frames enter the pipeline.
    enum Placement: Sendable {
        /// From the writer, last in the pipeline: through every handler of the connection.
        case last
        /// Below the WebSocket frame encoder: the frames are a WebSocket frame's bytes already
        /// (``RealtimeEvent/webSocketFrame``, encoded once for every subscriber).
        case belowWebSocketEncoder
    }

    private let subscription: RealtimeSubscription
    private let placement: Placement
    /// The context the frames are written from: the writer's own, or the encoder's.
    private var writeContext: ChannelHandlerContext?
    private let shape: (@Sendable (RealtimeEvent) -> RealtimeEvent?)?
    private let frame: @Sendable (RealtimeEvent) -> Frame?
    private let done: EventLoopPromise<Ending>
    private var context: ChannelHandlerContext?
    private var finished = false
    /// Set while ``drain()`` runs: a flush may make the channel writable again, calling it back.
    private var draining = false
    /// Set when it was called back meanwhile: it runs once more.
    private var drainAgain = false

    /// How many bytes of events are written between two flushes at most.
    static var flushBytes: Int { 32 * 1024 }

    private init(
        subscription: RealtimeSubscription, placement: Placement, shape: (@Sendable (RealtimeEvent) -> RealtimeEvent?)?,
        frame: @escaping @Sendable (RealtimeEvent) -> Frame?, done: EventLoopPromise<Ending>
    ) {
        self.subscription = subscription
        self.placement = placement
        self.shape = shape
        self.frame = frame
        self.done = done
    }

    /// Writes `subscription`'s events to `channel` until the subscription ends, the subscriber
    /// overflows or the connection closes; returns which. Cancelling the calling task stops the
    /// writer (``Ending/closed``).
    ///
    /// - Parameters:
    ///   - shape: what the subscriber is shown of an event (`nil`: not sent); runs on the loop.
    ///   - frame: the frame an event is written as (`nil`: nothing is written for it).
    ///   - placement: where the frames enter the pipeline.
    static func run(
        _ subscription: RealtimeSubscription, on channel: any Channel, placement: Placement = .last,
        shape: (@Sendable (RealtimeEvent) -> RealtimeEvent?)?, frame: @escaping @Sendable (RealtimeEvent) -> Frame?
    ) async throws -> Ending {
        let loop = channel.eventLoop
        let done = loop.makePromise(of: Ending.self)
        let added = loop.submit {
            let writer = RealtimeFrameWriter(subscription: subscription, placement: placement, shape: shape, frame: frame, done: done)
            try channel.pipeline.syncOperations.addHandler(writer, position: .last)
            return NIOLoopBound(writer, eventLoop: loop)
        }
        // A channel already closed takes no handler: the writer never ran.
        added.whenFailure { done.fail($0) }
        return try await withTaskCancellationHandler {
            try await done.futureResult.get()
        } onCancel: {
            added.whenSuccess { $0.value.finish(.closed) }
        }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        switch placement {
        case .last:
            writeContext = context
        case .belowWebSocketEncoder:
            // Writing from the encoder's context hands the bytes to the handlers below it.
            writeContext = try? context.pipeline.syncOperations.context(handlerType: WebSocketFrameEncoder.self)
        }
        let writer = NIOLoopBound(self, eventLoop: context.eventLoop)
        subscription.attach(Sink(eventLoop: context.eventLoop, writer: writer))
        // Events may already wait (the replay, `subscribed`, the current record): written once the
        // writer is in place, not while it is being added.
        context.eventLoop.execute { writer.value.drain() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        finish(.closed, remove: false)
        self.context = nil
        writeContext = nil
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { drain() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        // The pipeline goes with the channel: nothing to take out.
        finish(.closed, remove: false)
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // The WebSocket handler shuts the output after its close frame: writes would fail unseen.
        context.fireUserInboundEventTriggered(event)
        if case ChannelEvent.outputClosed? = event as? ChannelEvent { finish(.closed) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // The client's close frame (read here as the WebSocket handler gets it): its answer is the last frame sent.
        let closing = (unwrapInboundIn(data) as? WebSocketFrame)?.opcode == .connectionClose
        context.fireChannelRead(data)
        if closing { finish(.closed) }
    }

    /// Writes what waits while the channel takes it, flushing every ``flushBytes`` and at the end.
    fileprivate func drain() {
        guard !finished, let context else { return }
        guard !draining else {
            drainAgain = true
            return
        }
        draining = true
        defer { draining = false }
        repeat {
            drainAgain = false
            drainOnce(context)
        } while drainAgain && !finished
    }

    private func drainOnce(_ context: ChannelHandlerContext) {
        guard let out = writeContext else {
            // No encoder to write below: nothing can be sent on this connection.
            finish(.closed)
            return
        }
        var unflushed = 0
        var ending: Ending?
        reading: while context.channel.isWritable {
            switch subscription.poll() {
            case .event(var event):
                if let shape {
                    guard let shown = shape(event) else { continue }
                    event = shown
                }
                if let frame = frame(event) {
                    out.write(wrapOutboundOut(frame), promise: nil)
                    unflushed += event.byteCount
                }
                if event.kind == .overflow {
                    ending = .overflowed
                    break reading
                }
                if unflushed >= Self.flushBytes {
                    // Now the channel counts them towards its high-water mark.
                    out.flush()
                    unflushed = 0
                    // A close seen during the flush ends the writing.
                    if finished { return }
                }
            case .empty:
                break reading
            case .ended:
                ending = .ended
                break reading
            }
        }
        if unflushed > 0 || ending == .overflowed { out.flush() }
        if let ending { finish(ending) }
    }

    /// Stops writing, takes the writer out of the pipeline (unless it is being removed) and
    /// reports `ending`, once.
    fileprivate func finish(_ ending: Ending, remove: Bool = true) {
        guard !finished else { return }
        finished = true
        subscription.detach()
        if remove, let context {
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
        done.succeed(ending)
    }

    /// What the subscription wakes: the writer, reached on its loop.
    private final class Sink: RealtimeEventSink {
        let eventLoop: any EventLoop
        let writer: NIOLoopBound<RealtimeFrameWriter>

        init(eventLoop: any EventLoop, writer: NIOLoopBound<RealtimeFrameWriter>) {
            self.eventLoop = eventLoop
            self.writer = writer
        }

        func eventsReady() { writer.value.drain() }
    }
}
