/// A stream as the server describes it.
public struct NATSStreamInfo: Sendable, Equatable, Decodable {
    /// What the stream holds now.
    public struct State: Sendable, Equatable, Decodable {
        public var messages: UInt64
        public var bytes: UInt64
        public var firstSequence: UInt64
        public var lastSequence: UInt64
        public var consumers: Int

        enum CodingKeys: String, CodingKey {
            case messages, bytes, firstSequence = "first_seq", lastSequence = "last_seq", consumers = "consumer_count"
        }
    }

    public var config: NATSStreamConfiguration
    public var state: State
}
