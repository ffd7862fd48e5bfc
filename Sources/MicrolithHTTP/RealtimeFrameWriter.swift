import MicrolithRealtime
import NIOCore

/// Writes a subscription's events to its connection on the connection's event loop: the hub wakes
/// every writer of a loop in one task per commit, and each writes the event's bytes as encoded
/// once for every subscriber (``RealtimeEvent/json`` in a WebSocket frame,
/// ``RealtimeEvent/sseFrame`` in an event stream). No Swift task wakes per subscriber per event.
///
/// It sits last in the connection's pipeline, behind the server's own handlers (so what it writes
/// is encoded as any response or frame is), for as long as the subscription is served, then takes
/// itself out. It writes while the channel is writable (NIO's write-buffer high-water mark,
/// 64 KiB unsent) and resumes when it is again; meanwhile events wait in the subscription's
/// buffer, whose bound drops a subscriber that falls too far behind (an `overflow` event, the last
/// thing written).
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

    private let subscription: RealtimeSubscription
    private let shape: (@Sendable (RealtimeEvent) -> RealtimeEvent?)?
    private let frame: @Sendable (RealtimeEvent) -> Frame?
    private let done: EventLoopPromise<Ending>
    private var context: ChannelHandlerContext?
    private var finished = false

    private init(
        subscription: RealtimeSubscription, shape: (@Sendable (RealtimeEvent) -> RealtimeEvent?)?,
        frame: @escaping @Sendable (RealtimeEvent) -> Frame?, done: EventLoopPromise<Ending>
    ) {
        self.subscription = subscription
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
    static func run(
        _ subscription: RealtimeSubscription, on channel: any Channel, shape: (@Sendable (RealtimeEvent) -> RealtimeEvent?)?,
        frame: @escaping @Sendable (RealtimeEvent) -> Frame?
    ) async throws -> Ending {
        let loop = channel.eventLoop
        let done = loop.makePromise(of: Ending.self)
        let added = loop.submit {
            let writer = RealtimeFrameWriter(subscription: subscription, shape: shape, frame: frame, done: done)
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
        let writer = NIOLoopBound(self, eventLoop: context.eventLoop)
        subscription.attach(Sink(eventLoop: context.eventLoop, writer: writer))
        // Events may already wait (the replay, `subscribed`, the current record): written once the
        // writer is in place, not while it is being added.
        context.eventLoop.execute { writer.value.drain() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        finish(.closed, remove: false)
        self.context = nil
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

    /// Writes what waits while the channel takes it, then flushes once.
    fileprivate func drain() {
        guard !finished, let context else { return }
        var wrote = false
        var ending: Ending?
        reading: while context.channel.isWritable {
            switch subscription.poll() {
            case .event(var event):
                if let shape {
                    guard let shown = shape(event) else { continue }
                    event = shown
                }
                if let frame = frame(event) {
                    context.write(wrapOutboundOut(frame), promise: nil)
                    wrote = true
                }
                if event.kind == .overflow {
                    ending = .overflowed
                    break reading
                }
            case .empty:
                break reading
            case .ended:
                ending = .ended
                break reading
            }
        }
        if wrote { context.flush() }
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
