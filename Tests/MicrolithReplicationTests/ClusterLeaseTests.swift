import Foundation
import Logging
import MicrolithNATS
import MicrolithTestSupport
import Testing

@testable import MicrolithReplication

/// The lease that picks one node of a cluster (the one firing schedules), kept in a real
/// nats-server's JetStream.
@Suite(.serialized, .timeLimit(.minutes(1))) struct ClusterLeaseTests {
    struct Fixture {
        let server: NATSServerProcess
        let client: NATSClient
        let jetStream: NATSJetStream

        /// A lease of `duration`: long by default, so a busy machine does not let it run out.
        func lease(_ node: String, duration: Duration = .seconds(30)) -> ClusterLease {
            ClusterLease(
                node: node, configuration: ClusterLease.Configuration(name: "schedules", duration: duration), logger: Logger(label: node))
        }

        func close() async { await client.close() }
    }

    func fixture() async throws -> Fixture {
        let server = try NATSServerProcess(["-js"])
        let client = try await NATSClient.connect(NATSClient.Configuration(servers: [try NATSServerAddress(parsing: server.url)]))
        let jetStream = NATSJetStream(client: client, timeout: .seconds(2))
        return Fixture(server: server, client: client, jetStream: jetStream)
    }

    @Test func oneNodeHoldsItAndTheOthersKnowWho() async throws {
        let f = try await fixture()
        let a = f.lease("node-a")
        let b = f.lease("node-b")
        #expect(a.holder == .unknown, "nothing is known before NATS answers")
        try await a.prepare(f.jetStream)
        try await a.step(f.jetStream)
        try await b.step(f.jetStream)
        #expect(a.holder == .this)
        #expect(b.holder == .other("node-a"))
        // Renewals keep it with its holder.
        try await a.step(f.jetStream)
        try await b.step(f.jetStream)
        #expect(a.isHeld)
        #expect(!b.isHeld)
        await f.close()
    }

    @Test func twoNodesTakingAFreeLeaseAtOnceGetItOnce() async throws {
        let f = try await fixture()
        let leases = (1...5).map { f.lease("node-\($0)") }
        try await leases[0].prepare(f.jetStream)
        await withTaskGroup(of: Void.self) { group in
            for lease in leases { group.addTask { try? await lease.step(f.jetStream) } }
        }
        #expect(leases.filter(\.isHeld).count == 1)
        await f.close()
    }

    @Test func aHolderThatStopsRenewingLosesItBeforeAnotherTakesIt() async throws {
        let f = try await fixture()
        let a = f.lease("node-a", duration: .seconds(4))
        let b = f.lease("node-b", duration: .seconds(4))
        try await a.prepare(f.jetStream)
        try await a.step(f.jetStream)
        let seen = ContinuousClock.now
        try await b.step(f.jetStream)
        #expect(b.holder == .other("node-a"))
        // node-a stops renewing (a crash, or cut off from NATS). node-b waits a whole lease
        // from when it saw the last renewal.
        try await Task.sleep(for: .milliseconds(500))
        try await b.step(f.jetStream)
        if ContinuousClock.now - seen < .seconds(4) {  // (a machine too busy to get here in time proves nothing)
            #expect(b.holder == .other("node-a"), "not before its time is out")
        }
        try await Task.sleep(for: .milliseconds(3700))
        #expect(!a.isHeld, "the holder's own time ran out first")
        #expect(b.holder == .unknown, "a holder that stopped renewing is nobody known: what it would fire waits")
        try await b.step(f.jetStream)
        #expect(b.isHeld)
        // The old holder, back, finds it taken.
        try await a.step(f.jetStream)
        #expect(a.holder == .other("node-b"))
        await f.close()
    }

    @Test func aGracefulStopGivesItUpAtOnce() async throws {
        let f = try await fixture()
        let a = f.lease("node-a", duration: .seconds(30))
        let b = f.lease("node-b", duration: .seconds(30))
        let running = Task { await a.run(jetStream: f.jetStream) }
        let deadline = ContinuousClock.now + .seconds(10)
        while !a.isHeld && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(a.isHeld)
        try await b.step(f.jetStream)
        #expect(b.holder == .other("node-a"))
        running.cancel()
        await running.value
        #expect(a.holder == .unknown)
        try await b.step(f.jetStream)
        #expect(b.isHeld, "a lease of 30 s given up is free at once")
        await f.close()
    }

    @Test func aNodeThatCannotReachNATSHoldsNothing() async throws {
        let f = try await fixture()
        let a = f.lease("node-a", duration: .milliseconds(600))
        try await a.prepare(f.jetStream)
        try await a.step(f.jetStream)
        f.server.stop()
        await #expect(throws: (any Error).self) { try await a.step(f.jetStream) }
        try await Task.sleep(for: .milliseconds(600))
        #expect(a.holder == .unknown)
        await f.close()
    }
}
