public import NIOCore

/// A reader that takes a subscription's events on an event loop, in place of a task awaiting
/// ``RealtimeSubscription/next()``: the transports (WebSocket, Server-Sent Events) write each
/// event on their connection's loop, as the MQTT broker does.
///
/// Attach it with ``RealtimeSubscription/attach(_:)`` while on ``eventLoop``. The subscription
/// then calls ``eventsReady()`` on ``eventLoop`` when events wait (or it has ended) after a
/// ``RealtimeSubscription/poll()`` found nothing. The hub wakes every sink of one loop in one
/// task per commit, so a change reaching 1,000 subscribers on a loop costs that loop one hop.
/// A sink that stops polling (its connection's buffer is full) is not woken again until it has
/// polled the subscription empty once more; meanwhile events wait in the subscription's buffer,
/// bounded as for any reader.
public protocol RealtimeEventSink: AnyObject, Sendable {
    /// The loop ``eventsReady()`` is called on.
    var eventLoop: any EventLoop { get }
    /// Events wait to be polled, or the subscription has ended (``RealtimeSubscription/poll()``
    /// says which). Called on ``eventLoop``.
    func eventsReady()
}

/// Sinks to wake, gathered per event loop so that each loop is woken once for a batch of events.
struct SinkWakes {
    private var byLoop: [ObjectIdentifier: (any EventLoop, [any RealtimeEventSink])] = [:]

    mutating func add(_ sink: any RealtimeEventSink) {
        let loop = sink.eventLoop
        byLoop[ObjectIdentifier(loop), default: (loop, [])].1.append(sink)
    }

    /// Wakes what was gathered: one task on each loop, the sinks in the order they were added.
    mutating func wake() {
        for (_, (loop, sinks)) in byLoop {
            loop.execute {
                for sink in sinks { sink.eventsReady() }
            }
        }
        byLoop = [:]
    }
}
