/// A consumer as the server describes it: how far it got.
public struct NATSConsumerInfo: Sendable, Equatable, Decodable {
    /// A place in the consumer's deliveries and in the stream.
    public struct Position: Sendable, Equatable, Decodable {
        public var consumerSequence: UInt64
        public var streamSequence: UInt64

        enum CodingKeys: String, CodingKey { case consumerSequence = "consumer_seq", streamSequence = "stream_seq" }
    }

    public var name: String
    public var streamName: String
    public var config: NATSConsumerConfiguration
    /// The last message delivered.
    public var delivered: Position
    /// Everything up to here is acknowledged.
    public var ackFloor: Position
    /// Delivered and not yet acknowledged.
    public var ackPending: Int
    /// Messages of the stream not yet delivered.
    public var pending: UInt64

    enum CodingKeys: String, CodingKey {
        case name, streamName = "stream_name", config, delivered, ackFloor = "ack_floor", ackPending = "num_ack_pending"
        case pending = "num_pending"
    }
}
