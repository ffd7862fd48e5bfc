import MicrolithMQTT
import MicrolithNetwork
import NIOCore
import NIOPosix
import Testing

/// Connection budgets answered in MQTT's terms: a CONNECT past `mqtt.maxConnections`,
/// `mqtt.maxConnectionsPerAddress` or the process's budget gets a CONNACK refusal
/// (MQTT 5 §3.2.2.2: 0x89 Server busy, 0x97 Quota exceeded; 3.1.1 §3.2.2.3: 0x03 Server
/// unavailable), then the connection is closed [MQTT-3.2.2-7].
@Suite("MQTT connection limits")
struct MQTTConnectionLimitTests {
    /// CONNECT on a new connection; the CONNACK's reason code and whether the server closed after.
    private func attempt(_ port: Int, _ version: MQTTProtocolVersion, id: String) async throws -> (code: UInt8, closed: Bool) {
        let client = try await TestClient.connect(port: port, version: version)
        let ack = try await client.connect(clientID: id, username: nil, password: nil)
        return (ack.reasonCode, try await client.closed())
    }

    @Test("past mqtt.maxConnections: CONNACK 0x89 Server busy (MQTT 5), 0x03 Server unavailable (3.1.1); a freed place is taken again")
    func pastTheTotal() async throws {
        try await withBroker({ $0.maximumConnections = 2 }) { _, server in
            let holders = [try await TestClient.connect(port: server.port), try await TestClient.connect(port: server.port)]
            for (i, holder) in holders.enumerated() { try await holder.handshake(clientID: "holder-\(i)") }
            let v5 = try await attempt(server.port, .v5, id: "late-5")
            #expect(v5.code == 0x89 && v5.closed)
            let v3 = try await attempt(server.port, .v3_1_1, id: "late-3")
            #expect(v3.code == 0x03 && v3.closed)
            await holders[0].close()
            #expect(try await holders[0].closed())
            // The broker counts the connection out when it sees it go.
            var admitted = false
            for _ in 0..<50 where !admitted {
                admitted = try await attempt(server.port, .v5, id: "later").code == 0
                if !admitted { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(admitted)
        }
    }

    @Test("past mqtt.maxConnectionsPerAddress: CONNACK 0x97 Quota exceeded (MQTT 5)")
    func pastThePerAddressShare() async throws {
        try await withBroker({ $0.maximumConnectionsPerAddress = 1 }) { _, server in
            let holder = try await TestClient.connect(port: server.port)
            try await holder.handshake(clientID: "holder")
            let refused = try await attempt(server.port, .v5, id: "second")
            #expect(refused.code == 0x97 && refused.closed)
        }
    }

    @Test("past the process's budget (http.maxConnections): the CONNECT is answered 0x89 too, and a silent refused connection is closed within 2 s")
    func pastTheProcessBudget() async throws {
        try await withBroker { _, server in
            let limiter = ConnectionLimiter(maximum: 1, maximumPerAddress: 1)
            let listener = try await MQTTServer.start(broker: server.broker, group: MultiThreadedEventLoopGroup.singleton, limiter: limiter)
            let checks: () async throws -> Void = { [self] in
                let holder = try await TestClient.connect(port: listener.port)
                try await holder.handshake(clientID: "holder")
                let refused = try await attempt(listener.port, .v5, id: "refused")
                #expect(refused.code == 0x89 && refused.closed)
                let silent = try await TestClient.connect(port: listener.port)
                let start = ContinuousClock.now
                #expect(try await silent.closed(within: 5))
                #expect(ContinuousClock.now - start < .seconds(4))
                #expect(limiter.openConnections == 1)
            }
            let outcome: Result<Void, any Error>
            do {
                outcome = .success(try await checks())
            } catch {
                outcome = .failure(error)
            }
            // Stopping this listener shuts the broker down too; withBroker's own stop finds it done.
            await listener.stop()
            try outcome.get()
        }
    }
}
