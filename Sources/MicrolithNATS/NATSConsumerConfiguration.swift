/// A durable pull consumer's configuration: where it starts and how acknowledgements work.
public struct NATSConsumerConfiguration: Sendable, Equatable, Codable {
    /// What an acknowledgement acknowledges.
    public enum AckPolicy: String, Sendable, Equatable {
        /// Each message on its own.
        case explicit
        /// The message and every one delivered before it: one acknowledgement per batch.
        case all
    }

    /// Where a new consumer starts.
    public enum DeliverPolicy: Sendable, Equatable {
        case all, new, last
        /// From this stream sequence on.
        case startSequence(UInt64)
    }

    /// The durable name: the consumer and its position survive clients and server restarts.
    public var durableName: String
    /// Only messages of this subject (wildcards allowed), or all of the stream's.
    public var filterSubject: String?
    public var deliverPolicy: DeliverPolicy
    /// What an acknowledgement acknowledges.
    public var ackPolicy: AckPolicy
    /// How long the server waits for an acknowledgement before delivering again.
    public var ackWait: Duration
    /// Deliveries of one message before the server gives up on it (`nil`: no limit).
    public var maximumDeliveries: Int?
    /// Messages delivered and not yet acknowledged, at most (`nil`: the server's default).
    public var maximumAckPending: Int?

    public init(
        durableName: String, filterSubject: String? = nil, deliverPolicy: DeliverPolicy = .all, ackPolicy: AckPolicy = .explicit,
        ackWait: Duration = .seconds(30), maximumDeliveries: Int? = nil, maximumAckPending: Int? = nil
    ) {
        self.ackPolicy = ackPolicy
        self.durableName = durableName
        self.filterSubject = filterSubject
        self.deliverPolicy = deliverPolicy
        self.ackWait = ackWait
        self.maximumDeliveries = maximumDeliveries
        self.maximumAckPending = maximumAckPending
    }

    enum CodingKeys: String, CodingKey {
        case durableName = "durable_name", filterSubject = "filter_subject", deliverPolicy = "deliver_policy"
        case startSequence = "opt_start_seq", ackPolicy = "ack_policy", ackWait = "ack_wait", maximumDeliveries = "max_deliver"
        case maximumAckPending = "max_ack_pending", replayPolicy = "replay_policy"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        durableName = try c.decodeIfPresent(String.self, forKey: .durableName) ?? ""
        filterSubject = try c.decodeIfPresent(String.self, forKey: .filterSubject).flatMap { $0.isEmpty ? nil : $0 }
        switch try c.decodeIfPresent(String.self, forKey: .deliverPolicy) ?? "all" {
        case "new": deliverPolicy = .new
        case "last": deliverPolicy = .last
        case "by_start_sequence": deliverPolicy = .startSequence(try c.decodeIfPresent(UInt64.self, forKey: .startSequence) ?? 1)
        default: deliverPolicy = .all
        }
        ackPolicy = AckPolicy(rawValue: try c.decodeIfPresent(String.self, forKey: .ackPolicy) ?? "explicit") ?? .explicit
        ackWait = .nanoseconds(try c.decodeIfPresent(Int64.self, forKey: .ackWait) ?? 30_000_000_000)
        maximumDeliveries = try c.decodeIfPresent(Int.self, forKey: .maximumDeliveries).flatMap { $0 > 0 ? $0 : nil }
        maximumAckPending = try c.decodeIfPresent(Int.self, forKey: .maximumAckPending).flatMap { $0 > 0 ? $0 : nil }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(durableName, forKey: .durableName)
        try c.encodeIfPresent(filterSubject, forKey: .filterSubject)
        switch deliverPolicy {
        case .all: try c.encode("all", forKey: .deliverPolicy)
        case .new: try c.encode("new", forKey: .deliverPolicy)
        case .last: try c.encode("last", forKey: .deliverPolicy)
        case .startSequence(let sequence):
            try c.encode("by_start_sequence", forKey: .deliverPolicy)
            try c.encode(sequence, forKey: .startSequence)
        }
        try c.encode(ackPolicy.rawValue, forKey: .ackPolicy)
        try c.encode(ackWait.nanoseconds, forKey: .ackWait)
        try c.encode(maximumDeliveries ?? -1, forKey: .maximumDeliveries)
        try c.encodeIfPresent(maximumAckPending, forKey: .maximumAckPending)
        try c.encode("instant", forKey: .replayPolicy)
    }
}
