/// A JetStream stream's configuration (the fields replication uses; the server fills in the
/// rest with its defaults). Durations are sent in nanoseconds, as the API takes them.
public struct NATSStreamConfiguration: Sendable, Equatable, Codable {
    public enum Storage: String, Sendable, Codable { case file, memory }
    public enum Retention: String, Sendable, Codable { case limits, interest, workqueue }
    public enum Discard: String, Sendable, Codable { case old, new }

    public var name: String
    /// The subjects (wildcards allowed) whose messages the stream keeps.
    public var subjects: [String]
    public var storage: Storage
    public var retention: Retention
    /// Copies kept in a JetStream cluster (1, 3 or 5).
    public var replicas: Int
    /// How long messages are kept (`nil`: no limit).
    public var maximumAge: Duration?
    /// How many bytes and messages are kept (`nil`: no limit).
    public var maximumBytes: Int64?
    public var maximumMessages: Int64?
    /// How many messages are kept per subject (`nil`: no limit); 1 keeps only the latest, as a
    /// key-value bucket does.
    public var maximumMessagesPerSubject: Int64?
    /// Which messages go when a limit is reached.
    public var discard: Discard
    /// How long a `Nats-Msg-Id` is remembered to drop a second publish of the same message
    /// (`nil`: the server's default, two minutes).
    public var duplicateWindow: Duration?

    public init(
        name: String, subjects: [String], storage: Storage = .file, retention: Retention = .limits, replicas: Int = 1,
        maximumAge: Duration? = nil, maximumBytes: Int64? = nil, maximumMessages: Int64? = nil, discard: Discard = .old,
        duplicateWindow: Duration? = nil, maximumMessagesPerSubject: Int64? = nil
    ) {
        self.name = name
        self.subjects = subjects
        self.storage = storage
        self.retention = retention
        self.replicas = replicas
        self.maximumAge = maximumAge
        self.maximumBytes = maximumBytes
        self.maximumMessages = maximumMessages
        self.discard = discard
        self.duplicateWindow = duplicateWindow
        self.maximumMessagesPerSubject = maximumMessagesPerSubject
    }

    enum CodingKeys: String, CodingKey {
        case name, subjects, storage, retention, replicas = "num_replicas", maximumAge = "max_age", maximumBytes = "max_bytes"
        case maximumMessages = "max_msgs", discard, duplicateWindow = "duplicate_window"
        case maximumMessagesPerSubject = "max_msgs_per_subject"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        subjects = try c.decodeIfPresent([String].self, forKey: .subjects) ?? []
        storage = try c.decodeIfPresent(Storage.self, forKey: .storage) ?? .file
        retention = try c.decodeIfPresent(Retention.self, forKey: .retention) ?? .limits
        replicas = try c.decodeIfPresent(Int.self, forKey: .replicas) ?? 1
        maximumAge = try c.decodeIfPresent(Int64.self, forKey: .maximumAge).flatMap { $0 > 0 ? .nanoseconds($0) : nil }
        maximumBytes = try c.decodeIfPresent(Int64.self, forKey: .maximumBytes).flatMap { $0 >= 0 ? $0 : nil }
        maximumMessages = try c.decodeIfPresent(Int64.self, forKey: .maximumMessages).flatMap { $0 >= 0 ? $0 : nil }
        discard = try c.decodeIfPresent(Discard.self, forKey: .discard) ?? .old
        duplicateWindow = try c.decodeIfPresent(Int64.self, forKey: .duplicateWindow).flatMap { $0 > 0 ? .nanoseconds($0) : nil }
        maximumMessagesPerSubject = try c.decodeIfPresent(Int64.self, forKey: .maximumMessagesPerSubject).flatMap { $0 > 0 ? $0 : nil }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(subjects, forKey: .subjects)
        try c.encode(storage, forKey: .storage)
        try c.encode(retention, forKey: .retention)
        try c.encode(replicas, forKey: .replicas)
        try c.encode(maximumAge?.nanoseconds ?? 0, forKey: .maximumAge)
        try c.encode(maximumBytes ?? -1, forKey: .maximumBytes)
        try c.encode(maximumMessages ?? -1, forKey: .maximumMessages)
        try c.encode(discard, forKey: .discard)
        if let duplicateWindow { try c.encode(duplicateWindow.nanoseconds, forKey: .duplicateWindow) }
        if let maximumMessagesPerSubject { try c.encode(maximumMessagesPerSubject, forKey: .maximumMessagesPerSubject) }
    }
}
