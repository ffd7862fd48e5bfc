/// The server's receipt for a message stored in a stream.
public struct NATSPublishAck: Sendable, Equatable, Decodable {
    public var stream: String
    /// Its sequence in the stream.
    public var sequence: UInt64
    /// The message had been stored before under the same `Nats-Msg-Id` (within the duplicate
    /// window): it was not stored again, and `sequence` is the first copy's.
    public var duplicate: Bool

    enum CodingKeys: String, CodingKey { case stream, sequence = "seq", duplicate }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        stream = try c.decode(String.self, forKey: .stream)
        sequence = try c.decode(UInt64.self, forKey: .sequence)
        duplicate = try c.decodeIfPresent(Bool.self, forKey: .duplicate) ?? false
    }
}
