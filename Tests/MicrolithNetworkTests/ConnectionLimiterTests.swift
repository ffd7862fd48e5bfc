import MicrolithNetwork
import NIOCore
import NIOEmbedded
import Testing

/// The connection budget: totals, per-address budgets, room made from idle connections.
@Suite struct ConnectionLimiterTests {
    /// An active embedded channel whose peer is `host`.
    func peer(_ host: String) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        channel.remoteAddress = try SocketAddress(ipAddress: host, port: 40000)
        try channel.connect(to: SocketAddress(ipAddress: host, port: 40000)).wait()
        return channel
    }

    func admitted(_ limiter: ConnectionLimiter, _ channel: EmbeddedChannel) throws -> ConnectionTicket {
        try limiter.admit(channel).get()
    }

    @Test func refusesPastTheTotalWhenNothingIsIdle() throws {
        let limiter = ConnectionLimiter(maximum: 3, maximumPerAddress: 10)
        let tickets = try (0..<3).map { try admitted(limiter, try peer("10.0.0.\($0 + 1)")) }
        #expect(limiter.openConnections == 3)
        let refused = limiter.admit(try peer("10.0.0.9"))
        #expect(throws: ConnectionLimiter.Refusal.total(3)) { try refused.get() }
        tickets[0].release()
        tickets[0].release()  // a second release changes nothing
        #expect(limiter.openConnections == 2)
        _ = try admitted(limiter, try peer("10.0.0.9"))
        #expect(limiter.counters.refused == 1)
    }

    @Test func refusesPastThePerAddressBudgetWhileOthersGetIn() throws {
        let limiter = ConnectionLimiter(maximum: 10, maximumPerAddress: 2)
        _ = try admitted(limiter, try peer("10.0.0.1"))
        _ = try admitted(limiter, try peer("10.0.0.1"))
        #expect(throws: ConnectionLimiter.Refusal.perAddress(2)) { try limiter.admit(try peer("10.0.0.1")).get() }
        _ = try admitted(limiter, try peer("10.0.0.2"))
        #expect(limiter.openConnections == 3)
    }

    @Test func theOldestIdleConnectionMakesRoom() throws {
        let limiter = ConnectionLimiter(maximum: 3, maximumPerAddress: 10)
        let channels = try (1...3).map { try peer("10.0.0.\($0)") }
        let tickets = try channels.map { try admitted(limiter, $0) }
        tickets[2].setIdle(true)
        tickets[1].setIdle(true)
        tickets[2].setIdle(false)  // busy again: not a candidate
        _ = try admitted(limiter, try peer("10.0.0.9"))
        #expect(!channels[1].isActive, "the idle connection was closed")
        #expect(channels[0].isActive && channels[2].isActive)
        #expect(limiter.counters.evicted == 1)
        // Nothing idle now: the next one is refused.
        #expect(throws: ConnectionLimiter.Refusal.total(3)) { try limiter.admit(try peer("10.0.0.8")).get() }
    }

    @Test func anEvictedConnectionIsCountedOutOnceAndAtOnce() throws {
        let limiter = ConnectionLimiter(maximum: 2, maximumPerAddress: 10)
        let channels = try (1...2).map { try peer("10.0.0.\($0)") }
        let tickets = try channels.map { try admitted(limiter, $0) }
        tickets[0].setIdle(true)
        tickets[0].setIdle(true)  // marking twice keeps its place in the idle order
        tickets[1].setIdle(true)
        _ = try admitted(limiter, try peer("10.0.0.9"))
        #expect(!channels[0].isActive && channels[1].isActive, "the one idle for longest goes")
        #expect(limiter.openConnections == 2)
        tickets[0].release()  // its close comes later: it changes nothing
        #expect(limiter.openConnections == 2)
        tickets[1].release()
        #expect(limiter.openConnections == 1)
    }

    @Test func aFullAddressOnlyMakesRoomFromItsOwnIdleConnections() throws {
        let limiter = ConnectionLimiter(maximum: 10, maximumPerAddress: 1)
        let other = try peer("10.0.0.2")
        try admitted(limiter, other).setIdle(true)
        let mine = try peer("10.0.0.1")
        let ticket = try admitted(limiter, mine)
        #expect(throws: ConnectionLimiter.Refusal.perAddress(1)) { try limiter.admit(try peer("10.0.0.1")).get() }
        #expect(other.isActive, "another address's idle connection is not closed for this one")
        ticket.setIdle(true)
        _ = try admitted(limiter, try peer("10.0.0.1"))
        #expect(!mine.isActive)
    }

    @Test func theBudgetNeverExceedsTheTotalAndDefaultsStayWithinIt() {
        let limiter = ConnectionLimiter(maximum: 5, maximumPerAddress: 50)
        #expect(limiter.maximumPerAddress == 5)
        #expect(ConnectionLimiter(maximum: 0, maximumPerAddress: 0).maximum == 1)
    }

    @Test func theFileBudgetKeepsAReserve() {
        #expect(FileDescriptorLimit.connectionBudget(softLimit: 1024) == 1024 - FileDescriptorLimit.reserve)
        #expect(FileDescriptorLimit.connectionBudget(softLimit: 20) == 16)
        let limit = FileDescriptorLimit.raise()
        #expect((limit ?? 1) > 0)
    }

    @Test func theAdmissionHandlerCountsFromAcceptAndClosesRefusals() throws {
        let limiter = ConnectionLimiter(maximum: 1, maximumPerAddress: 1)
        let first = EmbeddedChannel(handler: ConnectionAdmissionHandler(limiter: limiter))
        first.remoteAddress = try SocketAddress(ipAddress: "10.0.0.1", port: 1)
        try first.connect(to: SocketAddress(ipAddress: "10.0.0.1", port: 1)).wait()
        #expect(limiter.openConnections == 1)
        let second = EmbeddedChannel(handler: ConnectionAdmissionHandler(limiter: limiter))
        second.remoteAddress = try SocketAddress(ipAddress: "10.0.0.2", port: 1)
        try second.connect(to: SocketAddress(ipAddress: "10.0.0.2", port: 1)).wait()
        #expect(!second.isActive)
        #expect(limiter.openConnections == 1)
        _ = try first.close().wait()
        #expect(limiter.openConnections == 0)
    }

    @Test func anAdmissionHandlerThatAnswersRefusalsPassesTheConnectionOnWithTheRefusal() throws {
        let limiter = ConnectionLimiter(maximum: 1, maximumPerAddress: 1)
        let first = EmbeddedChannel(handler: ConnectionAdmissionHandler(limiter: limiter, answersRefusals: true))
        try first.connect(to: SocketAddress(ipAddress: "10.0.0.1", port: 1)).wait()
        let handler = ConnectionAdmissionHandler(limiter: limiter, answersRefusals: true)
        let second = EmbeddedChannel(handler: handler)
        try second.connect(to: SocketAddress(ipAddress: "10.0.0.2", port: 1)).wait()
        #expect(second.isActive, "left open for the protocol to answer")
        #expect(handler.refusal == .total(1))
        try second.writeInbound(ByteBuffer(string: "hello"))
        #expect(try second.readInbound(as: ByteBuffer.self) == ByteBuffer(string: "hello"))
        #expect(limiter.openConnections == 1, "a refused connection is not counted")
        _ = try second.close().wait()
        #expect(limiter.openConnections == 1)
    }

    @Test func connectionsCountedByAddressAloneAreNeverClosedToMakeRoom() throws {
        let limiter = ConnectionLimiter(maximum: 2, maximumPerAddress: 2)
        let carried = try limiter.admit(address: "10.0.0.1").get()
        carried.setIdle(true)  // misused: still not a candidate, it has no channel to close
        _ = try limiter.admit(address: "10.0.0.2").get()
        #expect(throws: ConnectionLimiter.Refusal.total(2)) { try limiter.admit(address: "10.0.0.3").get() }
        #expect(throws: ConnectionLimiter.Refusal.total(2)) { try limiter.admit(try peer("10.0.0.4")).get() }
        carried.release()
        #expect(limiter.openConnections == 1)
        _ = try limiter.admit(address: nil).get()
        #expect(throws: ConnectionLimiter.Refusal.perAddress(1)) {
            try ConnectionLimiter(maximum: 5, maximumPerAddress: 1).admitTwice(address: "10.0.0.5")
        }
    }
}

extension ConnectionLimiter {
    fileprivate func admitTwice(address: String) throws {
        _ = try admit(address: address).get()
        _ = try admit(address: address).get()
    }
}
