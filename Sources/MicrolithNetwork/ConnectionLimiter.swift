public import NIOCore
import Synchronization

/// Admits connections on every port of a process (HTTP, WebSocket, MQTT) under one budget:
/// at most ``maximum`` open at once, and at most ``maximumPerAddress`` from one peer address.
///
/// A connection is counted from accept until it closes, whatever it sends (or does not send).
/// When the total budget is spent, the connection that has been an idle keep-alive connection
/// for longest is closed to make room (see ``ConnectionTicket/setIdle(_:)``); only when no
/// connection is idle is the new one refused. The per-address budget is never made room for:
/// one peer cannot push the others out.
public final class ConnectionLimiter: Sendable {
    /// The most connections open at once.
    public let maximum: Int
    /// The most connections open at once from one peer address.
    public let maximumPerAddress: Int

    private struct State {
        var open = 0
        var perAddress: [String: Int] = [:]
        /// Idle connections by ticket, with the order they became idle in.
        var idle: [ObjectIdentifier: (order: UInt64, address: String, channel: any Channel)] = [:]
        var nextOrder: UInt64 = 0
        var evicted = 0
        var refused = 0
    }

    private let state = Mutex(State())

    /// A limiter admitting `maximum` connections in all and `maximumPerAddress` from one address.
    public init(maximum: Int, maximumPerAddress: Int) {
        self.maximum = max(1, maximum)
        self.maximumPerAddress = max(1, min(maximumPerAddress, maximum))
    }

    /// The connections open now.
    public var openConnections: Int { state.withLock { $0.open } }

    /// How many idle connections were closed to make room, and how many were refused, so far.
    public var counters: (evicted: Int, refused: Int) { state.withLock { ($0.evicted, $0.refused) } }

    /// Why a connection was not admitted.
    public enum Refusal: Error, Sendable, Equatable, CustomStringConvertible {
        /// ``ConnectionLimiter/maximum`` connections are open and none is idle.
        case total(Int)
        /// ``ConnectionLimiter/maximumPerAddress`` connections are open from this peer.
        case perAddress(Int)

        /// The reason, for people.
        public var description: String {
            switch self {
            case .total(let n): return "too many connections: the server's limit is \(n) open connections; retry shortly"
            case .perAddress(let n): return "too many connections from your address: the limit is \(n) open connections per address"
            }
        }
    }

    /// Counts `channel` in; returns its ticket, or why it is refused. Call once, at accept.
    public func admit(_ channel: any Channel) -> Result<ConnectionTicket, Refusal> {
        let address = Self.addressKey(channel.remoteAddress)
        let ticket = ConnectionTicket(limiter: self, channel: channel, address: address)
        var victim: (any Channel)?
        let outcome: Result<ConnectionTicket, Refusal> = state.withLock { s in
            // Room is made by closing the connection idle for longest: among this address's own
            // connections when the address is at its budget, among all when the total is spent.
            let refusal: Refusal? =
                s.perAddress[address, default: 0] >= maximumPerAddress
                ? .perAddress(maximumPerAddress) : s.open >= maximum ? .total(maximum) : nil
            if let refusal {
                let candidates = refusal == .total(maximum) ? s.idle : s.idle.filter { $0.value.address == address }
                guard let oldest = candidates.min(by: { $0.value.order < $1.value.order }) else {
                    s.refused += 1
                    return .failure(refusal)
                }
                s.idle[oldest.key] = nil
                s.evicted += 1
                victim = oldest.value.channel
            }
            s.open += 1
            s.perAddress[address, default: 0] += 1
            return .success(ticket)
        }
        victim?.close(promise: nil)
        return outcome
    }

    fileprivate func release(_ ticket: ConnectionTicket) {
        state.withLock { s in
            s.open -= 1
            s.idle[ObjectIdentifier(ticket)] = nil
            let left = s.perAddress[ticket.address, default: 1] - 1
            s.perAddress[ticket.address] = left > 0 ? left : nil
        }
    }

    fileprivate func setIdle(_ ticket: ConnectionTicket, _ idle: Bool) {
        state.withLock { s in
            if idle {
                s.nextOrder += 1
                s.idle[ObjectIdentifier(ticket)] = (s.nextOrder, ticket.address, ticket.channel)
            } else {
                s.idle[ObjectIdentifier(ticket)] = nil
            }
        }
    }

    /// The part of a peer address that identifies the peer: its IP address without the port.
    static func addressKey(_ address: SocketAddress?) -> String {
        switch address {
        case .unixDomainSocket: return "unix"
        case nil: return "?"
        case let address?: return address.ipAddress ?? "?"
        }
    }
}

/// One admitted connection's place in a ``ConnectionLimiter``. Release it when the connection
/// closes; mark it idle while a keep-alive connection waits for its next request.
public final class ConnectionTicket: Sendable {
    private let limiter: ConnectionLimiter
    fileprivate let channel: any Channel
    fileprivate let address: String
    private let released = Atomic<Bool>(false)
    private let idle = Atomic<Bool>(false)

    fileprivate init(limiter: ConnectionLimiter, channel: any Channel, address: String) {
        self.limiter = limiter
        self.channel = channel
        self.address = address
    }

    /// Gives the place back; later calls do nothing.
    public func release() {
        guard !released.exchange(true, ordering: .acquiringAndReleasing) else { return }
        limiter.release(self)
    }

    /// Marks the connection idle (it may be closed to make room for a new one) or busy.
    public func setIdle(_ value: Bool) {
        guard !released.load(ordering: .acquiring), idle.exchange(value, ordering: .acquiringAndReleasing) != value else { return }
        limiter.setIdle(self, value)
    }
}
