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
        /// Every admitted connection's ticket: where room is looked for when the budget is spent.
        var tickets: [ObjectIdentifier: ConnectionTicket] = [:]
        var evicted = 0
        var refused = 0

        mutating func decrement(_ address: String) {
            let left = perAddress[address, default: 1] - 1
            perAddress[address] = left > 0 ? left : nil
        }
    }

    /// The order connections become idle in (a ticket keeps its number while idle; `0` is busy).
    /// Marking idle and busy touches only the ticket, never the lock: the idle connections are
    /// looked for only when room must be made.
    private let idleOrder = Atomic<UInt64>(0)

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
        admit(ConnectionTicket(limiter: self, channel: channel, address: Self.addressKey(channel.remoteAddress)))
    }

    /// Counts in a connection from `address` (its IP address without the port; `nil`: unknown)
    /// that is never marked idle, so never closed to make room: a connection of a protocol carried
    /// by another (MQTT over a WebSocket), counted by what carries it too.
    public func admit(address: String?) -> Result<ConnectionTicket, Refusal> {
        admit(ConnectionTicket(limiter: self, channel: nil, address: address ?? "?"))
    }

    private func admit(_ ticket: ConnectionTicket) -> Result<ConnectionTicket, Refusal> {
        let address = ticket.address
        var victim: (any Channel)?
        let outcome: Result<ConnectionTicket, Refusal> = state.withLock { s in
            // Room is made by closing the connection idle for longest: among this address's own
            // connections when the address is at its budget, among all when the total is spent.
            // A per-address budget as large as the total is no budget of its own: the total is named.
            let addressFull = s.perAddress[address, default: 0] >= maximumPerAddress
            if addressFull || s.open >= maximum {
                let refusal: Refusal = addressFull && maximumPerAddress < maximum ? .perAddress(maximumPerAddress) : .total(maximum)
                var oldest: (order: UInt64, ticket: ConnectionTicket)?
                for candidate in s.tickets.values where candidate.channel != nil && (!addressFull || candidate.address == address) {
                    let order = candidate.idleSince
                    if order != 0, order < oldest?.order ?? .max { oldest = (order, candidate) }
                }
                guard let oldest else {
                    s.refused += 1
                    return .failure(refusal)
                }
                // Counted out now (its close releases nothing more), so the new one fits.
                oldest.ticket.markReleased()
                s.tickets[ObjectIdentifier(oldest.ticket)] = nil
                s.open -= 1
                s.decrement(oldest.ticket.address)
                s.evicted += 1
                victim = oldest.ticket.channel
            }
            s.open += 1
            s.perAddress[address, default: 0] += 1
            s.tickets[ObjectIdentifier(ticket)] = ticket
            return .success(ticket)
        }
        victim?.close(promise: nil)
        return outcome
    }

    fileprivate func release(_ ticket: ConnectionTicket) {
        state.withLock { s in
            guard s.tickets.removeValue(forKey: ObjectIdentifier(ticket)) != nil else { return }
            s.open -= 1
            s.decrement(ticket.address)
        }
    }

    fileprivate func nextIdleOrder() -> UInt64 {
        idleOrder.wrappingAdd(1, ordering: .relaxed).newValue
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
    /// The connection's channel (closed to make room while idle); `nil` for one never marked idle.
    fileprivate let channel: (any Channel)?
    fileprivate let address: String
    private let released = Atomic<Bool>(false)
    /// When the connection became idle, in the limiter's idle order; `0` while busy.
    private let idle = Atomic<UInt64>(0)

    fileprivate init(limiter: ConnectionLimiter, channel: (any Channel)?, address: String) {
        self.limiter = limiter
        self.channel = channel
        self.address = address
    }

    /// Gives the place back; later calls do nothing.
    public func release() {
        guard !released.exchange(true, ordering: .acquiringAndReleasing) else { return }
        limiter.release(self)
    }

    /// Marks the connection idle (it may be closed to make room for a new one) or busy. Cheap:
    /// one atomic store on the ticket, no lock.
    public func setIdle(_ value: Bool) {
        if value {
            guard idle.load(ordering: .relaxed) == 0 else { return }
            idle.store(limiter.nextIdleOrder(), ordering: .releasing)
        } else {
            idle.store(0, ordering: .releasing)
        }
    }

    fileprivate var idleSince: UInt64 {
        released.load(ordering: .acquiring) ? 0 : idle.load(ordering: .acquiring)
    }

    fileprivate func markReleased() {
        released.store(true, ordering: .releasing)
    }
}
