/// Settings of the MQTT broker (`mqtt.*` in `microlith.yaml`).
public struct MQTTConfiguration: Sendable, Equatable {
    /// Whether the broker runs at all.
    public var enabled: Bool
    /// Whether the broker speaks TLS when the process has a certificate (`tls.*`): `true` by
    /// default; `false` keeps MQTT plain (on a loopback or private address, say) while HTTP is
    /// HTTPS. Without a certificate MQTT is plain whatever this says.
    public var tls = true
    /// The address to bind.
    public var host: String
    /// The TCP port; 0 picks a free one.
    public var port: Int
    /// Whether clients may connect without a user name (and then act as the `anonymous` role).
    /// Clients that send one sign in as that user of the app's users (`microlith user add`), whatever
    /// this says.
    public var allowAnonymous: Bool
    /// The largest packet accepted, in bytes.
    public var maximumPacketBytes: Int
    /// How long a persistent session outlives its connection when the client does not say
    /// (MQTT 3.1.1), and the most it may ask for (MQTT 5), in seconds.
    public var sessionExpirySeconds: Int
    /// QoS 1 messages kept for an offline session (table changes are replayed from the change log instead).
    public var maximumQueuedMessages: Int
    /// Unacknowledged QoS 1 messages in flight per client, at most (MQTT 5 clients may ask for fewer).
    public var maximumInflight: Int
    /// Bytes one client may have waiting: unwritten output before it counts as a slow consumer and is
    /// dropped, and QoS 1 messages in flight or queued for it (past that, new ones are not queued). Retained
    /// messages and table records sent on subscribe go out in pages as the client reads, within this.
    public var bufferBytes: Int
    /// Seconds a new connection has to send a complete CONNECT before it is closed.
    public var connectTimeoutSeconds: Int
    /// Seconds a client has to finish a packet it has started sending (whatever its keep-alive) before
    /// it is closed.
    public var packetTimeoutSeconds: Int
    /// Seconds a client may take to make room for the next page of retained messages or table records
    /// (read its output below half of ``bufferBytes`` and acknowledge what is queued) before it is dropped.
    public var writeTimeoutSeconds: Int
    /// Subscriptions one session may hold; SUBSCRIBE refuses further filters (MQTT 5 reason 0x97, 3.1.1 0x80).
    public var maximumSubscriptionsPerClient: Int
    /// Topic filters one SUBSCRIBE may carry; the ones past it are refused like ``maximumSubscriptionsPerClient``.
    public var maximumTopicFiltersPerPacket: Int
    /// Subscriptions all sessions together may hold.
    public var maximumSubscriptionsTotal: Int
    /// The longest keep-alive a client gets, in seconds: a client asking for none (0) or for more is held
    /// to this (MQTT 5 clients are told so by CONNACK's Server Keep Alive), so that a connection whose
    /// peer vanished without a FIN is closed after 1.5 × this at the latest.
    public var maximumKeepAliveSeconds: Int
    /// Sessions the broker holds at most, connected or kept for their client; a CONNECT that would
    /// open another is refused (MQTT 5 CONNACK 0x97 Quota exceeded, 3.1.1 0x03 Server unavailable).
    public var maximumSessions: Int
    /// MQTT connections (TCP and WebSocket) open at once, at most; past it a CONNECT is answered with
    /// CONNACK 0x89 Server busy (MQTT 5) or 0x03 Server unavailable (3.1.1). They count against the
    /// process's budget (`http.maxConnections`) too.
    public var maximumConnections: Int
    /// MQTT connections from one IP address, at most; past it CONNACK 0x97 Quota exceeded (MQTT 5) or
    /// 0x03 (3.1.1).
    public var maximumConnectionsPerAddress: Int

    public init(
        enabled: Bool = true, host: String = "127.0.0.1", port: Int = 1883, allowAnonymous: Bool = true,
        maximumPacketBytes: Int = 1 << 20, sessionExpirySeconds: Int = 86_400, maximumQueuedMessages: Int = 1000,
        maximumInflight: Int = 100, bufferBytes: Int = 8 << 20, connectTimeoutSeconds: Int = 10, packetTimeoutSeconds: Int = 60,
        writeTimeoutSeconds: Int = 30, maximumSubscriptionsPerClient: Int = 1000, maximumTopicFiltersPerPacket: Int = 100,
        maximumSubscriptionsTotal: Int = 100_000, maximumKeepAliveSeconds: Int = 3600, maximumSessions: Int = 100_000,
        maximumConnections: Int = 4096, maximumConnectionsPerAddress: Int = 4096
    ) {
        self.enabled = enabled
        self.host = host
        self.port = port
        self.allowAnonymous = allowAnonymous
        self.maximumPacketBytes = maximumPacketBytes
        self.sessionExpirySeconds = sessionExpirySeconds
        self.maximumQueuedMessages = maximumQueuedMessages
        self.maximumInflight = maximumInflight
        self.bufferBytes = bufferBytes
        self.connectTimeoutSeconds = connectTimeoutSeconds
        self.packetTimeoutSeconds = packetTimeoutSeconds
        self.writeTimeoutSeconds = writeTimeoutSeconds
        self.maximumSubscriptionsPerClient = maximumSubscriptionsPerClient
        self.maximumTopicFiltersPerPacket = maximumTopicFiltersPerPacket
        self.maximumSubscriptionsTotal = maximumSubscriptionsTotal
        self.maximumKeepAliveSeconds = maximumKeepAliveSeconds
        self.maximumSessions = maximumSessions
        self.maximumConnections = maximumConnections
        self.maximumConnectionsPerAddress = maximumConnectionsPerAddress
    }
}
